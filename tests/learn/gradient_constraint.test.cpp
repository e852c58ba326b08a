// SPDX-License-Identifier: MIT
#include <cmath>

#include "metagrad/learn/gradient_constraint.hpp"
#include "metagrad/ops/linalg.hpp"
#include "loss_fixtures.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::learn;
using namespace metagrad::learn_test;

namespace gradient_constraint_test {
/// n points of `in` features, random explanations, a random 0/1 mask with a 1 in every row.
Explanations<double> random_explanations(std::int64_t n, std::int64_t in, Generator& gen) {
  Explanations<double> e{randn<double>(Shape{n, in}, gen), randn<double>(Shape{n, in}, gen), {}};
  auto m = bernoulli<double>(Shape{n, in}, 0.5, gen);
  for (std::int64_t i = 0; i < n; ++i) m.fresh_data()[i * in] = 1;
  e.mask = m;
  return e;
}
}  // namespace gradient_constraint_test

TEST_SUITE("learn.gradient_constraint") {
  TEST_CASE("learn.gradient_constraint: both forms of a linear model match their closed forms") {
    Generator gen(21);
    nn::Linear<double> net(5, 3, gen);
    const auto e = gradient_constraint_test::random_explanations(4, 5, gen);
    const auto w = net.weight.detach();
    const auto squared = constraint_values(net, e.x, e.gradient, e.mask, ConstraintForm::SquaredError);
    const auto aligned = constraint_values(net, e.x, e.gradient, e.mask, ConstraintForm::Alignment);
    REQUIRE(squared.shape() == Shape{4});
    for (std::int64_t n = 0; n < 4; ++n) {
      // ∂Σ_k z_k/∂x = Σ_k W_k, the same at every point.
      double sq = 0, dot = 0, a2 = 0, b2 = 0;
      for (std::int64_t i = 0; i < 5; ++i) {
        double colsum = 0;
        for (std::int64_t k = 0; k < 3; ++k) colsum += w(k, i);
        const double m = e.mask(n, i), a = m * colsum, b = m * e.gradient(n, i);
        sq += (a - b) * (a - b), dot += a * b, a2 += a * a, b2 += b * b;
      }
      CHECK(squared(n) == doctest::Approx(sq).epsilon(1e-12));
      CHECK(aligned(n) == doctest::Approx(1 - dot / std::sqrt(a2 * b2)).epsilon(1e-12));
    }
  }

  TEST_CASE("learn.gradient_constraint: the predicted-class score differentiates the argmax logit only") {
    Generator gen(26);
    nn::Linear<double> net(5, 3, gen);
    const auto e = gradient_constraint_test::random_explanations(6, 5, gen);
    const auto phi = constraint_values(net, e.x, e.gradient, e.mask, ConstraintForm::SquaredError, true,
                                       ConstraintScore::PredictedClass);
    const auto z = net.forward(e.x);
    for (std::int64_t n = 0; n < 6; ++n) {
      std::int64_t k = 0;
      for (std::int64_t j = 1; j < 3; ++j)
        if (z(n, j) > z(n, k)) k = j;
      double sq = 0;
      for (std::int64_t i = 0; i < 5; ++i) {
        const double d = e.mask(n, i) * (net.weight(k, i) - e.gradient(n, i));
        sq += d * d;
      }
      CHECK(phi(n) == doctest::Approx(sq).epsilon(1e-12));
    }
    GradientConstraint<double> c(e, {.score = ConstraintScore::PredictedClass, .batch = 0});
    Generator unused(0);
    auto tanh_net = tanh_mlp(5, 4, 3, gen);
    const auto f = [&](const V& p) {
      ParameterOverride<double> scope(*tanh_net, std::span<const Tensor<double>>(p));
      return c.estimate(tanh_net, unused);
    };
    const auto result = gradcheck(f, tanh_net->parameters(), {.order = 2});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("learn.gradient_constraint: E φ passes gradcheck in the parameters to second order, both forms") {
    Generator gen(22);
    auto net = tanh_mlp(3, 4, 2, gen);
    const auto e = gradient_constraint_test::random_explanations(3, 3, gen);
    for (const auto form : {ConstraintForm::SquaredError, ConstraintForm::Alignment}) {
      INFO("form ", to_string(form));
      GradientConstraint<double> c(e, {.form = form, .alpha = 0.1, .batch = 0});
      Generator unused(0);
      const auto f = [&](const V& p) {
        ParameterOverride<double> scope(*net, std::span<const Tensor<double>>(p));
        return c.estimate(net, unused);
      };
      const auto result = gradcheck(f, net->parameters(), {.order = 2});
      CHECK_MESSAGE(result.ok, result.report);
    }
  }

  TEST_CASE("learn.gradient_constraint: the squared form passes gradcheck to third order, unmasked, one output") {
    Generator gen(23);
    auto net = tanh_mlp(2, 3, 1, gen);
    Explanations<double> e{randn<double>(Shape{2, 2}, gen), randn<double>(Shape{2, 2}, gen), {}};
    GradientConstraint<double> c(e, {.batch = 0});
    Generator unused(0);
    const auto f = [&](const V& p) {
      ParameterOverride<double> scope(*net, std::span<const Tensor<double>>(p));
      return c.estimate(net, unused);
    };
    const auto result = gradcheck(f, net->parameters(), {.order = 3});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("learn.gradient_constraint: value, batches and satisfaction") {
    Generator gen(24);
    nn::Linear<double> net(3, 1, gen, false);
    // Explanations equal to the model's own gradient on points 0..4, off by 1 in one feature on 5..9.
    auto g = Tensor<double>::empty(Shape{10, 3});
    for (std::int64_t n = 0; n < 10; ++n)
      for (std::int64_t i = 0; i < 3; ++i) g.fresh_data()[n * 3 + i] = net.weight(0, i) + (n >= 5 && i == 0 ? 1.0 : 0.0);
    Explanations<double> e{randn<double>(Shape{10, 3}, gen), g, {}};
    GradientConstraint<double> c(e, {.alpha = 0.5, .batch = 4});
    CHECK(c.value(net, 3) == doctest::Approx(0.5).epsilon(1e-12));  // chunks of 3 cover 10 points
    CHECK(constraint_satisfaction(net, e, ConstraintForm::SquaredError, 0.5, 4) == doctest::Approx(0.5));
    CHECK(constraint_satisfaction(net, e, ConstraintForm::SquaredError, 1.0) == doctest::Approx(1.0));
    // A batch of 4 distinct points; its estimate is the mean φ over them (each φ is 0 or 1).
    Generator draw(5);
    const auto batch = c.sample(draw);
    REQUIRE(batch.size() == 4);
    const double est = c.estimate(net, batch).item();
    CHECK(std::abs(4 * est - std::round(4 * est)) < 1e-9);  // a multiple of 1/4 (up to rounding)
    CHECK((est >= -1e-12 && est <= 1 + 1e-12));
    // Over many batches the estimate is unbiased.
    double total = 0;
    for (int r = 0; r < 400; ++r) total += c.estimate(net, draw).item();
    CHECK(total / 400 == doctest::Approx(0.5).epsilon(0.08));
  }

  TEST_CASE("learn.gradient_constraint: bad input names the op and the shapes") {
    Generator gen(25);
    auto net = tanh_mlp(3, 4, 2, gen);
    Explanations<double> e{randn<double>(Shape{4, 3}, gen), randn<double>(Shape{4, 2}, gen), {}};
    METAGRAD_CHECK_ERROR((GradientConstraint<double>(e, {})), "GradientConstraint", "[4, 2]", "[4, 3]");
    e.gradient = zeros<double>(Shape{4, 3});
    METAGRAD_CHECK_ERROR((GradientConstraint<double>(e, {.form = ConstraintForm::Alignment})), "GradientConstraint",
                         "alignment", "point 0");
    METAGRAD_CHECK_ERROR((GradientConstraint<double>(e, {.alpha = -1})), "GradientConstraint", "alpha");
    e.mask = ones<double>(Shape{4, 3, 1});
    METAGRAD_CHECK_ERROR((GradientConstraint<double>(e, {})), "GradientConstraint", "mask", "[4, 3, 1]");
    METAGRAD_CHECK_ERROR(constraint_values(net, e.x, e.x, ones<double>(Shape{2, 3}), ConstraintForm::SquaredError),
                         "constraint_values", "[2, 3]");
  }
}
