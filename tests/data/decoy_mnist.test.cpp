// SPDX-License-Identifier: MIT
// The two Decoy-MNIST builders reproduce their papers' construction on known pixels: robust_mlx's
// squeezed digit (checked against Pillow's own output), decoy half and mask; CDEP's corner patch,
// its values in train and test, the [−1, 1] scaling and the four-corner mask.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "metagrad/data/decoy_mnist.hpp"
#include "test_util.hpp"

namespace md = metagrad::data;
using metagrad::IndexTensor;
using metagrad::Shape;
using metagrad::Tensor;

namespace {

/// The gray level the tests put at (r, c) of every image: varied, with values up to 255.
int pattern(int r, int c) { return (r * 37 + c * 11 + (r * c) % 7) % 256; }

/// n images of `pattern` with labels 0, 1, ..., 9, 0, ...
md::Dataset<float> patterned(std::int64_t n) {
  md::Dataset<float> ds{Tensor<float>::empty(Shape{n, 1, 28, 28}), IndexTensor::empty(Shape{n}), {}};
  for (std::int64_t i = 0; i < n; ++i) {
    ds.labels.fresh_data()[i] = i % 10;
    for (int p = 0; p < 784; ++p) ds.inputs.fresh_data()[i * 784 + p] = static_cast<float>(pattern(p / 28, p % 28) / 255.0);
  }
  return ds;
}

}  // namespace

TEST_SUITE("data.decoy_mnist") {
  TEST_CASE("data.decoy_mnist_robust_mlx: the 28×14 squeeze matches Pillow's bicubic resize") {
    // Expected values: numpy + Pillow 9.4, Image.fromarray(rgb_uint8).resize(size=[28, 14]) as
    // augment2 calls it; checksums sum(v) and sum((k + 1)·v) over the 392 outputs.
    const auto coeffs = md::detail::pil_bicubic_coeffs(28, 14);
    std::vector<std::uint8_t> img(784), bars(784, 0);
    for (int p = 0; p < 784; ++p) img[static_cast<std::size_t>(p)] = static_cast<std::uint8_t>(pattern(p / 28, p % 28));
    auto checksums = [](const std::array<std::uint8_t, 392>& o) {
      std::int64_t s = 0, w = 0;
      for (std::int64_t k = 0; k < 392; ++k) s += o[static_cast<std::size_t>(k)], w += (k + 1) * o[static_cast<std::size_t>(k)];
      return std::pair{s, w};
    };
    const auto a = md::detail::pil_squeeze_rows(img.data(), coeffs);
    CHECK(checksums(a) == std::pair<std::int64_t, std::int64_t>{49792, 9901699});
    CHECK(std::vector<int>(a.begin(), a.begin() + 8) == std::vector<int>{20, 32, 43, 55, 66, 78, 89, 97});
    CHECK(std::vector<int>(a.end() - 8, a.end()) == std::vector<int>{176, 186, 202, 211, 222, 234, 125, 135});
    // A hollow bar: white rows 6..21, columns 10..17, with a black inside (rows 8..19, columns 12..15).
    for (int r = 6; r < 22; ++r)
      for (int c = 10; c < 18; ++c) bars[static_cast<std::size_t>(r * 28 + c)] = (r >= 8 && r < 20 && c >= 12 && c < 16) ? 0 : 255;
    const auto b = md::detail::pil_squeeze_rows(bars.data(), coeffs);
    CHECK(checksums(b) == std::pair<std::int64_t, std::int64_t>{10248, 2013732});
    CHECK(b[2 * 28 + 10] == 17);   // overshoot ring of the bicubic filter
    CHECK(b[3 * 28 + 12] == 221);
    CHECK(b[4 * 28 + 12] == 20);
  }

  TEST_CASE("data.decoy_mnist_robust_mlx: train decoy half = 25·label, digit in the other half, mask = decoy") {
    const auto clean = patterned(40);
    const auto ds = md::decoy_mnist_robust_mlx(clean, md::Bias::train, 7, /*normalize=*/false);
    CHECK(ds.inputs.shape() == Shape{40, 3, 28, 28});
    CHECK(ds.masks.shape() == Shape{40, 3, 28, 28});
    CHECK(ds.labels.to_vector() == clean.labels.to_vector());
    std::vector<std::uint8_t> img(784);
    for (int p = 0; p < 784; ++p) img[static_cast<std::size_t>(p)] = static_cast<std::uint8_t>(pattern(p / 28, p % 28));
    const auto squeezed = md::detail::pil_squeeze_rows(img.data(), md::detail::pil_bicubic_coeffs(28, 14));
    int tops = 0;
    for (std::int64_t i = 0; i < 40; ++i) {
      const bool top = ds.masks.at({i, 0, 27, 0}) == 1.0f;  // decoy at the bottom ⇒ digit on top
      tops += top;
      const float decoy = static_cast<float>(25 * (i % 10) / 255.0);
      for (int c = 0; c < 3; ++c)
        for (int r = 0; r < 28; ++r)
          for (int col = 0; col < 28; ++col) {
            const bool decoy_row = top ? r >= 14 : r < 14;
            const float want = decoy_row ? decoy : static_cast<float>(squeezed[static_cast<std::size_t>((top ? r : r - 14) * 28 + col)] / 255.0);
            REQUIRE(ds.inputs.at({i, c, r, col}) == want);
            REQUIRE(ds.masks.at({i, c, r, col}) == (decoy_row ? 1.0f : 0.0f));
          }
    }
    CHECK(tops > 5);  // both placements occur
    CHECK(tops < 35);
  }

  TEST_CASE("data.decoy_mnist_robust_mlx: normalization constants; test decoys are random digits; seeded") {
    const auto clean = patterned(200);
    const auto ds = md::decoy_mnist_robust_mlx(clean, md::Bias::train, 1);
    // A label-3 image: the decoy value 75 / 255 normalized per channel.
    const bool top = ds.masks.at({3, 0, 27, 0}) == 1.0f;
    for (int c = 0; c < 3; ++c)
      CHECK(ds.inputs.at({3, c, top ? 27 : 0, 5}) ==
            doctest::Approx((75 / 255.0 - md::kDecoyMnistMean[static_cast<std::size_t>(c)]) / md::kDecoyMnistStd[static_cast<std::size_t>(c)]).epsilon(1e-6));
    const auto test = md::decoy_mnist_robust_mlx(clean, md::Bias::test, 1, false);
    int agree = 0;
    std::set<int> decoys;
    for (std::int64_t i = 0; i < 200; ++i) {
      const bool t = test.masks.at({i, 0, 27, 0}) == 1.0f;
      const int v = static_cast<int>(std::lround(test.inputs.at({i, 1, t ? 27 : 0, 0}) * 255));
      REQUIRE(v % 25 == 0);
      decoys.insert(v / 25);
      agree += v / 25 == i % 10;
    }
    CHECK(decoys.size() == 10);
    CHECK(agree < 50);  // independent of the label: about 20 of 200 agree by chance
    const auto again = md::decoy_mnist_robust_mlx(clean, md::Bias::test, 1, false);
    CHECK(again.inputs.to_vector() == test.inputs.to_vector());
    CHECK(md::decoy_mnist_robust_mlx(clean, md::Bias::test, 2, false).inputs.to_vector() != test.inputs.to_vector());
  }

  TEST_CASE("data.decoy_mnist_cdep: 5×5 patch 255 − 25y (train) / 25y (test) in one corner, scaled to [−1, 1]") {
    // Gray levels below 200, and 101 in the corners, which no patch value (a multiple of 5) equals,
    // so the patch is visible. Test patches go up to 225, so that set is scaled by 225, not 255.
    auto clean = patterned(60);
    auto gray = [](int r, int c) { return (r < 5 || r >= 23) && (c < 5 || c >= 23) ? 101 : pattern(r, c) % 200; };
    for (std::int64_t i = 0; i < 60; ++i)
      for (int p = 0; p < 784; ++p) clean.inputs.fresh_data()[i * 784 + p] = static_cast<float>(gray(p / 28, p % 28) / 255.0);
    int pattern_max = 0;
    for (int p = 0; p < 784; ++p) pattern_max = std::max(pattern_max, gray(p / 28, p % 28));
    for (auto bias : {md::Bias::train, md::Bias::test}) {
      const auto ds = md::decoy_mnist_cdep(clean, bias, 5);
      const int top = std::max(pattern_max, bias == md::Bias::train ? 255 : 225);
      auto scaled = [top](int v) { return static_cast<float>(v) / static_cast<float>(top) * 2.0f - 1.0f; };
      CHECK(ds.inputs.shape() == Shape{60, 1, 28, 28});
      std::set<int> corners_used;
      for (std::int64_t i = 0; i < 60; ++i) {
        const std::int64_t y = i % 10;
        const float patch = scaled(bias == md::Bias::train ? 255 - 25 * y : 25 * y);
        int patched = 0;
        for (int k = 0; k < 4; ++k) {
          const int r0 = k < 2 ? 0 : 23, c0 = k % 2 == 0 ? 0 : 23;
          bool all = true;
          for (int r = r0; r < r0 + 5; ++r)
            for (int c = c0; c < c0 + 5; ++c) all = all && ds.inputs.at({i, 0, r, c}) == patch;
          if (all) patched++, corners_used.insert(k);
        }
        REQUIRE(patched == 1);
        // Away from the corners, the image is its gray level scaled by the set's maximum to [−1, 1].
        CHECK(ds.inputs.at({i, 0, 14, 9}) == scaled(gray(14, 9)));
        CHECK(ds.inputs.at({i, 0, 3, 12}) == scaled(gray(3, 12)));
        CHECK(ds.masks.at({i, 0, 2, 25}) == 1.0f);
        CHECK(ds.masks.at({i, 0, 26, 1}) == 1.0f);
        CHECK(ds.masks.at({i, 0, 5, 0}) == 0.0f);
        CHECK(ds.masks.at({i, 0, 14, 14}) == 0.0f);
      }
      CHECK(corners_used.size() == 4);
    }
    float sum = 0;
    for (auto v : md::cdep_corner_mask().values()) sum += v;
    CHECK(sum == 100.0f);
  }

  TEST_CASE("data.decoy builders: bad input names the builder and the problem") {
    auto clean = patterned(3);
    md::Dataset<float> wrong{Tensor<float>::empty(Shape{3, 1, 28, 27}), clean.labels, {}};
    METAGRAD_CHECK_ERROR(md::decoy_mnist_cdep(wrong, md::Bias::train, 0), "decoy_mnist_cdep", "[3, 1, 28, 27]");
    auto big = clean;
    big.inputs = Tensor<float>::empty(Shape{3, 1, 28, 28});
    for (auto& v : std::span(big.inputs.fresh_data(), 3 * 784)) v = 0.5f;
    big.inputs.fresh_data()[10] = 1.5f;
    METAGRAD_CHECK_ERROR(md::decoy_mnist_robust_mlx(big, md::Bias::train, 0), "decoy_mnist_robust_mlx", "1.5",
                         "outside [0, 1]");
    auto label = clean;
    label.labels = IndexTensor::empty(Shape{3});
    label.labels.fresh_data()[0] = 0, label.labels.fresh_data()[1] = 10, label.labels.fresh_data()[2] = 1;
    METAGRAD_CHECK_ERROR(md::decoy_mnist_robust_mlx(label, md::Bias::test, 0), "label 10 is outside 0..9");
  }
}
