// SPDX-License-Identifier: MIT
// ColorMNIST as CDEP builds it: the ten colours equal python colour's red→purple range to the
// last bit, digits are gray × colour[y] in train and colour[9 − y] at test time, and every set is
// standardized with the train set's per-channel statistics.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "metagrad/data/color_mnist.hpp"
#include "test_util.hpp"

namespace md = metagrad::data;
using metagrad::IndexTensor;
using metagrad::Shape;
using metagrad::Tensor;

namespace {

md::Dataset<double> digits(std::int64_t n) {
  md::Dataset<double> ds{Tensor<double>::empty(Shape{n, 1, 28, 28}), IndexTensor::empty(Shape{n}), {}};
  for (std::int64_t i = 0; i < n; ++i) {
    ds.labels.fresh_data()[i] = (i * 3) % 10;
    for (int p = 0; p < 784; ++p) {
      const int r = p / 28, c = p % 28;
      // A centred blob whose gray level depends on the image; the border stays background.
      const bool fg = r >= 6 && r < 22 && c >= 8 + i % 3 && c < 20;
      ds.inputs.fresh_data()[i * 784 + p] = fg ? ((r * 7 + c + i) % 256) / 255.0 : 0.0;
    }
  }
  return ds;
}

}  // namespace

TEST_SUITE("data.color_mnist") {
  TEST_CASE("data.kColorMnistColours: python colour's Color('red').range_to(Color('purple'), 10), bit for bit") {
    // Printed with '%.17g' from colour 0.1.5: [c.get_rgb() for c in Color("red").range_to(Color("purple"), 10)].
    const std::array<std::array<double, 3>, 10> python{{
        {1, 0, 0},
        {0.94466230936819173, 0.52481239409343994, 0},
        {0.79051077221011856, 0.88932461873638347, 0},
        {0.2779956427015246, 0.83398692810457509, 0},
        {0, 0.77864923747276693, 0.17303316388283735},
        {0, 0.72331154684095855, 0.56257564754296807},
        {0, 0.44531590413943323, 0.66797385620915029},
        {0, 0.068070685064148595, 0.61263616557734202},
        {0.24768821108690423, 0, 0.55729847494553375},
        {0.50196078431372548, 0, 0.50196078431372537},
    }};
    for (std::size_t k = 0; k < 10; ++k)
      for (std::size_t c = 0; c < 3; ++c) {
        CAPTURE(k);
        CAPTURE(c);
        CHECK(md::kColorMnistColours[k][c] == python[k][c]);
      }
  }

  TEST_CASE("data.colorize_mnist_cdep: gray × colour[y] in train, × colour[9 − y] at test time") {
    const auto clean = digits(20);
    const auto train = md::colorize_mnist_cdep(clean, md::Bias::train);
    const auto test = md::colorize_mnist_cdep(clean, md::Bias::test);
    CHECK(train.inputs.shape() == Shape{20, 3, 28, 28});
    CHECK(!train.has_masks());
    for (std::int64_t i = 0; i < 20; ++i) {
      const auto y = static_cast<std::size_t>(clean.labels.data()[i]);
      const double gray = std::round(clean.inputs.at({i, 0, 10, 12}) * 255);
      REQUIRE(gray > 0);
      for (std::size_t c = 0; c < 3; ++c) {
        CHECK(train.inputs.at({i, static_cast<std::int64_t>(c), 10, 12}) == gray * md::kColorMnistColours[y][c]);
        CHECK(test.inputs.at({i, static_cast<std::int64_t>(c), 10, 12}) == gray * md::kColorMnistColours[9 - y][c]);
        CHECK(train.inputs.at({i, static_cast<std::int64_t>(c), 0, 0}) == 0.0);
      }
    }
  }

  TEST_CASE("data.color_mnist_cdep: every set standardized with the train set's channel statistics") {
    const auto clean = digits(30);
    const auto sets = md::color_mnist_cdep(clean, clean, clean);
    const auto raw_train = md::colorize_mnist_cdep(clean, md::Bias::train);
    const auto raw_test = md::colorize_mnist_cdep(clean, md::Bias::test);
    const auto st = md::channel_stats(sets.train.inputs);
    for (int c = 0; c < 3; ++c) {
      CHECK(st.mean[static_cast<std::size_t>(c)] == doctest::Approx(0.0).epsilon(1e-9).scale(1));
      CHECK(st.std[static_cast<std::size_t>(c)] == doctest::Approx(1.0).epsilon(1e-9));
    }
    // Hand-computed statistics of the raw train channel 1 (population std, as numpy's .std()).
    double sum = 0, sq = 0;
    for (std::int64_t i = 0; i < 30; ++i)
      for (int p = 0; p < 784; ++p) sum += raw_train.inputs.data()[(i * 3 + 1) * 784 + p];
    const double mean = sum / (30 * 784);
    for (std::int64_t i = 0; i < 30; ++i)
      for (int p = 0; p < 784; ++p) sq += std::pow(raw_train.inputs.data()[(i * 3 + 1) * 784 + p] - mean, 2);
    const double sd = std::sqrt(sq / (30 * 784));
    CHECK(sets.stats.mean[1] == doctest::Approx(mean).epsilon(1e-12));
    CHECK(sets.stats.std[1] == doctest::Approx(sd).epsilon(1e-12));
    CHECK(sets.test.inputs.at({4, 1, 10, 12}) == doctest::Approx((raw_test.inputs.at({4, 1, 10, 12}) - mean) / sd).epsilon(1e-12));
    CHECK(sets.valid.inputs.at({4, 1, 0, 0}) == doctest::Approx(-mean / sd).epsilon(1e-12));
  }

  TEST_CASE("data.foreground_frequency: sums to 1, zero where no image has ink") {
    const auto raw = md::colorize_mnist_cdep(digits(9), md::Bias::train);
    const auto f = md::foreground_frequency(raw);
    double total = 0;
    for (double v : f) total += v;
    CHECK(total == doctest::Approx(1.0));
    CHECK(f[0] == 0.0);
    CHECK(f[10 * 28 + 12] > f[10 * 28 + 8]);  // column 8 has ink in a third of the images only
    CHECK(f[10 * 28 + 8] > 0.0);
    METAGRAD_CHECK_ERROR(md::colorize_mnist_cdep(md::Dataset<double>{Tensor<double>::empty(Shape{1, 3, 28, 28}),
                                                                    IndexTensor::empty(Shape{1}), {}},
                                                 md::Bias::train),
                         "colorize_mnist_cdep", "[1, 3, 28, 28]");
  }
}
