// SPDX-License-Identifier: MIT
// The umbrella header end to end on the real fetched data (each case skipped with a message when its
// data set is not fetched): the biased sets built over MNIST and Fashion-MNIST keep their
// construction's invariants at full size.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "metagrad/data/data.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
namespace md = metagrad::data;
using metagrad::Shape;

namespace {
bool fetched(const char* set, const fs::path& probe) {
  if (fs::exists(md::data_dir() / probe)) return true;
  const std::string why = "skipped: " + std::string(set) + " is not fetched; run examples/fetch_data.sh " + set;
  MESSAGE(why);
  return false;
}
}  // namespace

TEST_SUITE("data.data") {
  TEST_CASE("data: Decoy-MNIST (both recipes) and ColorMNIST over the real MNIST digits") {
    if (!fetched("mnist", "mnist/digits/9.json")) return;
    const auto parts = md::random_split(md::load_mnist(md::Split::train), {8000, 1000}, 0);
    const auto test = md::load_mnist(md::Split::test);
    const auto decoy = md::decoy_mnist_robust_mlx(parts[0], md::Bias::train, 1);
    CHECK(decoy.inputs.shape() == Shape{8000, 3, 28, 28});
    // The decoy half of example i is the normalized 25·label everywhere.
    for (std::int64_t i = 0; i < 8000; i += 997) {
      const bool top = decoy.masks.at({i, 0, 27, 0}) == 1.0f;
      const double v = 25.0 * static_cast<double>(parts[0].labels.data()[i]) / 255.0;
      CHECK(decoy.inputs.at({i, 2, top ? 20 : 3, 11}) == doctest::Approx((v - md::kDecoyMnistMean[2]) / md::kDecoyMnistStd[2]));
    }
    const auto cdep = md::decoy_mnist_cdep(test, md::Bias::test, 2);
    float lo = 1, hi = -1;
    for (auto v : cdep.inputs.values()) lo = std::min(lo, v), hi = std::max(hi, v);
    CHECK(lo == -1.0f);
    CHECK(hi == 1.0f);
    const auto color = md::color_mnist_cdep(parts[0], parts[1], test);
    CHECK(color.test.inputs.shape() == Shape{1000, 3, 28, 28});
    for (double s : color.stats.std) CHECK(s > 0);
  }

  TEST_CASE("data: Decoy-MNIST over Fashion-MNIST test images") {
    if (!fetched("fashion-mnist", "fashion-mnist/t10k-images-idx3-ubyte.gz")) return;
    const auto fm = md::load_fashion_mnist(md::Split::test);
    const auto decoy = md::decoy_mnist_robust_mlx(fm, md::Bias::test, 3, false);
    CHECK(decoy.inputs.shape() == Shape{10000, 3, 28, 28});
    double mask_sum = 0;
    for (auto v : decoy.masks.values()) mask_sum += v;
    CHECK(mask_sum == 10000.0 * 3 * 14 * 28);
  }
}
