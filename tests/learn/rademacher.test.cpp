// SPDX-License-Identifier: MIT
#include "metagrad/learn/rademacher.hpp"
#include "loss_fixtures.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::learn;
using namespace metagrad::learn_test;

namespace rademacher_test {
/// s = (1/n) Σ_i σ_i x_i for one draw.
std::vector<double> signed_mean(const Tensor<double>& x, const std::vector<double>& sigma) {
  const auto n = x.size(0), d = x.size(1);
  std::vector<double> s(static_cast<std::size_t>(d), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) s[static_cast<std::size_t>(j)] += sigma[static_cast<std::size_t>(i)] * x(i, j) / n;
  return s;
}
double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double r = 0;
  for (std::size_t i = 0; i < a.size(); ++i) r += a[i] * b[i];
  return r;
}
}  // namespace rademacher_test

TEST_SUITE("learn.rademacher") {
  TEST_CASE("learn.rademacher: norm-bounded linear functions, with and without a gradient constraint, match their closed forms") {
    // {x ↦ wᵀx : ‖w‖ ≤ B}: sup = B‖s‖. With φ = ‖w − w*‖² ≤ α and ‖w*‖ + √α ≤ B, the sup over the
    // ball around w* is w*ᵀs + √α‖s‖.
    Generator gen(41);
    const std::int64_t n = 12, d = 4;
    const double radius = 2.0;
    const auto x = randn<double>(Shape{n, d}, gen);
    const std::vector<double> w_star{0.5, -0.3, 0.2, 0.1};
    auto g = Tensor<double>::empty(Shape{20, d});
    for (std::int64_t i = 0; i < 20 * d; ++i) g.fresh_data()[i] = w_star[static_cast<std::size_t>(i % d)];
    const auto make = [](Generator& gen) { return nn::Linear<double>(4, 1, gen, false); };
    const auto project = [&](nn::Linear<double>& m) { project_to_ball(m.weight, radius); };
    const RademacherOptions o{.draws = 6, .steps = 400, .lr = 0.05, .seed = 3};
    const auto free = empirical_rademacher<double>(make, x, nullptr, project, o);
    double expected_free = 0;
    for (int k = 0; k < o.draws; ++k) {
      const auto s = rademacher_test::signed_mean(x, free.signs[static_cast<std::size_t>(k)]);
      const double closed = radius * std::sqrt(rademacher_test::dot(s, s));
      CHECK(free.values[static_cast<std::size_t>(k)] == doctest::Approx(closed).epsilon(1e-3));
      expected_free += closed / o.draws;
    }
    CHECK(free.mean == doctest::Approx(expected_free).epsilon(1e-3));

    double previous = free.mean;
    for (const double alpha : {0.25, 0.04}) {
      INFO("alpha ", alpha);
      GradientConstraint<double> c({randn<double>(Shape{20, d}, gen), g, {}}, {.alpha = alpha, .batch = 0});
      RademacherOptions oc = o;
      oc.steps = 1500;
      const auto constrained = empirical_rademacher<double>(make, x, &c, project, oc);
      for (int k = 0; k < o.draws; ++k) {
        const auto s = rademacher_test::signed_mean(x, constrained.signs[static_cast<std::size_t>(k)]);
        const double closed = rademacher_test::dot(w_star, s) + std::sqrt(alpha) * std::sqrt(rademacher_test::dot(s, s));
        CHECK(constrained.values[static_cast<std::size_t>(k)] == doctest::Approx(closed).epsilon(2e-2));
        CHECK(constrained.violations[static_cast<std::size_t>(k)] < 1e-2 * alpha);
      }
      CHECK(constrained.mean < previous);  // tighter α, smaller class
      previous = constrained.mean;
    }
  }

  TEST_CASE("learn.rademacher: bad input") {
    Generator gen(42);
    const auto make = [](Generator& gen) { return nn::Linear<double>(4, 2, gen, false); };
    const auto none = [](nn::Linear<double>&) {};
    METAGRAD_CHECK_ERROR(empirical_rademacher<double>(make, randn<double>(Shape{5, 4}, gen), nullptr, none),
                         "empirical_rademacher", "one output per point", "[5, 2]");
    METAGRAD_CHECK_ERROR(empirical_rademacher<double>(make, randn<double>(Shape{5}, gen), nullptr, none),
                         "empirical_rademacher", "[5]");
  }
}
