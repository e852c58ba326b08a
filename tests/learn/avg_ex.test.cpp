// SPDX-License-Identifier: MIT
#include "metagrad/learn/avg_ex.hpp"
#include "loss_fixtures.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::learn;
using namespace metagrad::learn_test;

TEST_SUITE("learn.avg_ex") {
  TEST_CASE("learn.avg_ex: the noise lands only on masked features, with standard deviation σ") {
    Generator gen(51);
    auto b = random_batch(200, 10, 3, gen);
    Generator noise(5);
    const double sigma = 0.7;
    const auto noisy = masked_noise(b, sigma, noise);
    double sq = 0;
    std::int64_t count = 0;
    for (std::int64_t i = 0; i < noisy.numel(); ++i) {
      const double d = noisy.data()[i] - b.x.data()[i];
      if (b.mask.data()[i] == 0) {
        CHECK(d == 0.0);
      } else {
        CHECK(d != 0.0);
        sq += d * d;
        ++count;
      }
    }
    // ~1,100 draws: the sample std is within 10% of σ with overwhelming probability.
    CHECK(std::sqrt(sq / count) == doctest::Approx(sigma).epsilon(0.1));
  }

  TEST_CASE("learn.avg_ex: σ = 0 gives twice the clean loss; a seed repeats the loss") {
    Generator gen(52);
    auto net = tanh_mlp(4, 5, 3, gen);
    const auto b = random_batch(5, 4, 3, gen);
    const double ce = cross_entropy(net->forward(b.x), b.y).item();
    AvgEx<double> zero({.sigma = 0, .samples = 3});
    CHECK(zero(net, b).item() == doctest::Approx(2 * ce).epsilon(1e-12));
    AvgEx<double> a({.sigma = 0.5, .samples = 2, .seed = 9}), c({.sigma = 0.5, .samples = 2, .seed = 9});
    const double first = a(net, b).item();
    CHECK(first == c(net, b).item());
    CHECK(a(net, b).item() != first);  // the generator moves on between batches
    // With the mean over samples spelled out.
    Generator g(9);
    const double n1 = cross_entropy(net->forward(masked_noise(b, 0.5, g)), b.y).item();
    const double n2 = cross_entropy(net->forward(masked_noise(b, 0.5, g)), b.y).item();
    CHECK(first == doctest::Approx(ce + 0.5 * (n1 + n2)).epsilon(1e-12));
  }

  TEST_CASE("learn.avg_ex: the loss passes gradcheck in the parameters with the noise held fixed") {
    Generator gen(53);
    auto net = tanh_mlp(3, 4, 3, gen);
    const auto b = random_batch(3, 3, 3, gen);
    AvgEx<double> avg({.sigma = 0.5, .samples = 2});
    auto f = [&](const V& p) {
      avg.generator().seed(3);  // the same draws at every evaluation
      ParameterOverride<double> scope(*net, std::span<const Tensor<double>>(p));
      return avg(net, b);
    };
    const auto result = gradcheck(f, net->parameters(), {.order = 2});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("learn.avg_ex: name, setting and bad input") {
    Generator gen(54);
    auto net = tanh_mlp(4, 5, 3, gen);
    const auto b = random_batch(3, 4, 3, gen);
    AvgEx<double> avg({.sigma = 0.25, .samples = 2, .seed = 4});
    CHECK(avg.name() == "avg_ex");
    CHECK(avg.setting().dump() == R"({"sigma":0.25,"samples":2,"seed":4})");
    auto bad = b;
    bad.mask = Tensor<double>();
    METAGRAD_CHECK_ERROR(avg(net, bad), "AvgEx", "needs a mask");
    METAGRAD_CHECK_ERROR(AvgEx<double>({.sigma = -1}), "AvgEx", "sigma");
    METAGRAD_CHECK_ERROR(AvgEx<double>({.samples = 0}), "AvgEx", "samples");
  }
}
