// SPDX-License-Identifier: MIT
// gradcheck must pass correct derivatives and, just as important, fail wrong ones at the order
// where they go wrong.
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"
#include "test_util.hpp"

using namespace metagrad;
using D = Tensor<double>;
using Vec = std::vector<D>;

namespace {

/// x² with a backward rule that is right in value but built from a constant (a kernel result, not
/// an op), so its own derivative is lost: first order passes, second order must fail.
D square_without_double_backward(const D& x) {
  return record("square_1st_order_only", cpu::map_unary(x, [](const auto& a) { return a * a; }), {x},
                [](const D& g, BackwardContext<double>& c) {
                  const D two_x = cpu::map_unary(c.input(0), [](const auto& a) { return a * 2.0; });
                  c.set(0, g * two_x);
                },
                [](const TangentContext<double>& c) { return c.tangent(0) * c.input(0) * 2.0; });
}

/// x³ whose second derivative is right but whose third is wrong: the rule for the first
/// derivative's backward uses a constant 6 x in place of a differentiable one.
D cube_wrong_third(const D& x) {
  return record("cube", cpu::map_unary(x, [](const auto& a) { return a * a * a; }), {x},
                [](const D& g, BackwardContext<double>& c) {
                  const D x_in = c.input(0);
                  // 3x² g, where x² is computed by an op whose backward is correct only to first order.
                  c.set(0, square_without_double_backward(x_in) * g * 3.0);
                },
                [](const TangentContext<double>& c) { return square_without_double_backward(c.input(0)) * c.tangent(0) * 3.0; });
}

D nan_rule(const D& x) {
  return record("nan_rule", cpu::map_unary(x, [](const auto& a) { return a; }), {x},
                [](const D& g, BackwardContext<double>& c) { c.set(0, g * std::nan("")); },
                [](const TangentContext<double>& c) { return c.tangent(0); });
}

}  // namespace

TEST_SUITE("functional.gradcheck") {
  TEST_CASE("functional.gradcheck: passes correct derivatives to order 3 with several inputs") {
    Generator gen(1);
    const Vec xs{rand<double>(Shape{3, 4}, gen, 0.5, 1.5), rand<double>(Shape{4}, gen, -1.0, 1.0)};
    auto f = [](const Vec& a) { return tanh(a[0] * a[1]) / a[0] + exp(a[1]); };
    const auto r = gradcheck(f, xs, {.order = 3});
    CHECK_MESSAGE(r.ok, r.report);
    CHECK(r.report.empty());
  }

  TEST_CASE("functional.gradcheck: a wrong first derivative fails at order 1 and says where") {
    auto wrong = [](const Vec& a) {
      return record("wrong", cpu::map_unary(a[0], [](const auto& v) { return v * v; }), {a[0]},
                    [](const D& g, BackwardContext<double>& c) { c.set(0, g * c.input(0) * 2.5); },
                    [](const TangentContext<double>& c) { return c.tangent(0) * c.input(0) * 2.0; });
    };
    const auto r = gradcheck(wrong, {tensor<double>({0.5, -1.0})});
    CHECK_FALSE(r.ok);
    CHECK(r.report.find("order 1") != std::string::npos);
    CHECK(r.report.find("d output0[1] / d input0[1]") != std::string::npos);
    // analytical 2.5 * x = -2.5 vs numerical 2x = -2
    CHECK(r.report.find("analytical -2.5 vs numerical -2") != std::string::npos);
  }

  TEST_CASE("functional.gradcheck: a wrong tangent rule fails in forward mode, with a right backward rule") {
    auto wrong_tangent = [](const Vec& a) {
      return record("wrong_tangent", cpu::map_unary(a[0], [](const auto& v) { return v * v; }), {a[0]},
                    [](const D& g, BackwardContext<double>& c) { c.set(0, g * c.input(0) * 2.0); },
                    [](const TangentContext<double>& c) { return c.tangent(0) * c.input(0) * 2.5; });
    };
    const auto r = gradcheck(wrong_tangent, {tensor<double>({0.5, -1.0})});
    CHECK_FALSE(r.ok);
    CHECK(r.report.find("order 1 (forward mode)") != std::string::npos);
    CHECK(r.report.find("d output0") == std::string::npos);  // the reverse check passed
  }

  TEST_CASE("functional.gradcheck: a rule that is not differentiable again fails at order 2, not 1") {
    const Vec xs{tensor<double>({0.7, -0.4, 1.3})};
    auto f = [](const Vec& a) { return square_without_double_backward(a[0]); };
    CHECK(gradcheck(f, xs).ok);
    const auto r = gradgradcheck(f, xs);
    CHECK_FALSE(r.ok);
    CHECK(r.report.find("order 2") != std::string::npos);
    CHECK(r.report.find("order 1") == std::string::npos);
  }

  TEST_CASE("functional.gradcheck: an error in the third derivative fails at order 3 only") {
    const Vec xs{tensor<double>({0.7, -0.4})};
    auto f = [](const Vec& a) { return cube_wrong_third(a[0]); };
    CHECK(gradcheck(f, xs, {.order = 2}).ok);
    const auto r = gradcheck(f, xs, {.order = 3});
    CHECK_FALSE(r.ok);
    CHECK(r.report.find("order 3") != std::string::npos);
  }

  TEST_CASE("functional.gradcheck: a non-finite analytical derivative fails") {
    const auto r = gradcheck([](const Vec& a) { return nan_rule(a[0]); }, {tensor<double>({1.0})});
    CHECK_FALSE(r.ok);
    CHECK(r.report.find("nan") != std::string::npos);
  }

  TEST_CASE("functional.gradcheck: several outputs, one of them constant") {
    const Vec xs{tensor<double>({0.3, 0.9})};
    TensorFn f = [](const Vec& a) { return Vec{exp(a[0]), tensor<double>({1.0, 2.0}), sum(a[0] * a[0])}; };
    CHECK(gradcheck(f, xs, {.order = 2}).ok);
    // A wrong rule in the second output is found there.
    TensorFn g = [](const Vec& a) {
      auto bad = record("bad", cpu::map_unary(a[0], [](const auto& v) { return v * 3.0; }), {a[0]},
                        [](const D& gr, BackwardContext<double>& c) { c.set(0, gr * 2.0); },
                        [](const TangentContext<double>& c) { return c.tangent(0) * 3.0; });
      return Vec{exp(a[0]), bad};
    };
    const auto r = gradcheck(g, xs);
    CHECK_FALSE(r.ok);
    CHECK(r.report.find("d output1") != std::string::npos);
    CHECK(r.report.find("d output0") == std::string::npos);
  }

  TEST_CASE("functional.gradcheck: tolerances are real: a coarse eps is caught on a curved function") {
    const Vec xs{tensor<double>({0.4})};
    auto f = [](const Vec& a) { return exp(a[0] * 10.0); };
    CHECK(gradcheck(f, xs).ok);
    // Central differences err by f'''·eps²/6 = 1000·e⁴·1e-4/6 ≈ 0.9 at eps = 1e-2.
    CHECK_FALSE(gradcheck(f, xs, {.eps = 1e-2, .atol = 1e-6, .rtol = 1e-4}).ok);
    CHECK(gradcheck(f, xs, {.eps = 1e-2, .atol = 1e-6, .rtol = 1e-2}).ok);
  }

  TEST_CASE("functional.gradcheck: gradgradcheck raises the order to at least 2") {
    const Vec xs{tensor<double>({0.7})};
    auto f = [](const Vec& a) { return square_without_double_backward(a[0]); };
    CHECK_FALSE(gradgradcheck(f, xs, {.order = 1}).ok);
  }
}
