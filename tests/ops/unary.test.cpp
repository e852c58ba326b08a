// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using metagrad::testing::OpRow;
using V = std::vector<Tensor<double>>;

namespace {
/// Uniform in [low, high) but at least `margin` from every kink, so that central differences
/// never straddle one.
Tensor<double> away_from(const Shape& shape, Generator& gen, std::vector<double> kinks, double low = -2, double high = 2,
                         double margin = 0.1) {
  auto t = Tensor<double>::empty(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    double v;
    do v = low + (high - low) * gen.uniform();
    while (std::any_of(kinks.begin(), kinks.end(), [&](double k) { return std::abs(v - k) < margin; }));
    t.fresh_data()[i] = v;
  }
  return t;
}

/// make_inputs for a row: every input drawn away from `kinks`.
auto inputs_away_from(std::vector<Shape> shapes, std::vector<double> kinks) {
  return [shapes, kinks](Generator& gen) {
    V xs;
    for (const auto& s : shapes) xs.push_back(away_from(s, gen, kinks));
    return xs;
  };
}

/// d sum(f(x) * w) / dx for a random weight w, without create_graph.
template <class F>
Tensor<double> input_grad(F&& f, const Tensor<double>& x0, const Tensor<double>& w) {
  auto x = x0.detach().requires_grad_();
  return grad(sum(mul(f(x), w)), x);
}

template <class F>
Tensor<double> map_scalar(const Tensor<double>& x, F f) {
  auto out = Tensor<double>::empty(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) out.fresh_data()[i] = f(x.data()[i]);
  return out;
}

/// Largest |a - b| / scale (default |b|) in units of float epsilon.
double float_error_in_eps(const Tensor<float>& a, const Tensor<double>& b, const Tensor<double>& scale = {}) {
  double worst = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double ref = b.data()[i], s = scale.defined() ? scale.data()[i] : std::abs(ref);
    worst = std::max(worst, std::abs(a.data()[i] - ref) / (s + 1e-30));
  }
  return worst / std::numeric_limits<float>::epsilon();
}

Tensor<float> to_float(const Tensor<double>& x) {
  auto out = Tensor<float>::empty(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) out.fresh_data()[i] = static_cast<float>(x.data()[i]);
  return out;
}
Tensor<double> to_double(const Tensor<float>& x) {
  auto out = Tensor<double>::empty(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) out.fresh_data()[i] = x.data()[i];
  return out;
}
}  // namespace

TEST_SUITE("ops.unary") {
  TEST_CASE("ops.unary: op table, elementary functions") {
    const std::vector<OpRow> rows = {
        {"exp", {{3, 5}}, [](const V& a) { return exp(a[0]); }, 3},
        {"log", {{3, 5}}, [](const V& a) { return log(a[0]); }, 3, 0.5, 2.0},
        {"log1p", {{2, 3, 4}}, [](const V& a) { return log1p(a[0]); }, 2, -0.5, 2.0},
        {"square", {{2, 3, 4}}, [](const V& a) { return square(a[0]); }, 3},
        {"sqrt", {{3, 5}}, [](const V& a) { return sqrt(a[0]); }, 2, 0.5, 2.0},
        {"rsqrt", {{3, 5}}, [](const V& a) { return rsqrt(a[0]); }, 3, 0.5, 2.0},
        {"pow 3 (any sign)", {{3, 5}}, [](const V& a) { return pow(a[0], 3.0); }, 3},
        {"pow 2", {{2, 3, 4}}, [](const V& a) { return pow(a[0], 2.0); }},
        {"pow -2", {{3, 5}}, [](const V& a) { return pow(a[0], -2.0); }, 2, 0.5, 2.0},
        {"pow -1", {{3, 5}}, [](const V& a) { return pow(a[0], -1.0); }, 2, 0.5, 2.0},
        {"pow 0.5", {{3, 5}}, [](const V& a) { return pow(a[0], 0.5); }, 2, 0.5, 2.0},
        {"pow -0.5", {{3, 5}}, [](const V& a) { return pow(a[0], -0.5); }, 2, 0.5, 2.0},
        {"pow 2.5", {{3, 5}}, [](const V& a) { return pow(a[0], 2.5); }, 3, 0.5, 2.0},
        {"pow -1.7", {{2, 3, 4}}, [](const V& a) { return pow(a[0], -1.7); }, 2, 0.5, 2.0},
        {"pow 1", {{3, 5}}, [](const V& a) { return pow(a[0], 1.0) * a[0]; }},
        {"pow 0 (zero gradient)", {{3, 5}}, [](const V& a) { return pow(a[0], 0.0) + a[0]; }},
        {"sin", {{3, 5}}, [](const V& a) { return sin(a[0]); }, 3},
        {"cos", {{2, 3, 4}}, [](const V& a) { return cos(a[0]); }, 3},
        {"abs", {{2, 3, 4}}, [](const V& a) { return abs(a[0]); }, 2, -2, 2, {}, inputs_away_from({{2, 3, 4}}, {0})},
        {"abs * x order 3", {{3, 5}}, [](const V& a) { return abs(a[0]) * a[0]; }, 3, -2, 2, {},
         inputs_away_from({{3, 5}}, {0})},
        {"clamp both bounds", {{3, 5}}, [](const V& a) { return clamp(a[0], -1.0, 0.5); }, 2, -2, 2, {},
         inputs_away_from({{3, 5}}, {-1, 0.5})},
        {"clamp min only", {{2, 3, 4}}, [](const V& a) { return clamp(a[0] * a[0], 0.3, std::nullopt); }, 2, -2, 2, {},
         inputs_away_from({{2, 3, 4}}, {-std::sqrt(0.3), std::sqrt(0.3)})},
        {"clamp max only", {{3, 5}}, [](const V& a) { return clamp(a[0], std::nullopt, 0.2) * a[0]; }, 3, -2, 2, {},
         inputs_away_from({{3, 5}}, {0.2})},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.unary: op table, activations") {
    const std::vector<OpRow> rows = {
        {"tanh", {{3, 5}}, [](const V& a) { return tanh(a[0]); }, 3},
        {"sigmoid", {{2, 3, 4}}, [](const V& a) { return sigmoid(a[0]); }, 3},
        {"tanh * sigmoid order 3", {{3, 5}}, [](const V& a) { return tanh(a[0]) * sigmoid(a[0]); }, 3},
        {"relu", {{2, 3, 4}}, [](const V& a) { return relu(a[0]); }, 2, -2, 2, {}, inputs_away_from({{2, 3, 4}}, {0})},
        {"relu * x order 3", {{3, 5}}, [](const V& a) { return relu(a[0]) * a[0]; }, 3, -2, 2, {},
         inputs_away_from({{3, 5}}, {0})},
        {"leaky_relu", {{3, 5}}, [](const V& a) { return leaky_relu(a[0], 0.1) * a[0]; }, 3, -2, 2, {},
         inputs_away_from({{3, 5}}, {0})},
        {"elu", {{2, 3, 4}}, [](const V& a) { return elu(a[0], 1.3); }, 3, -2, 2, {}, inputs_away_from({{2, 3, 4}}, {0})},
        {"softplus", {{3, 5}}, [](const V& a) { return softplus(a[0]); }, 3},
        // beta x crosses the threshold inside [-2, 2]: both pieces and the switch are covered.
        {"softplus beta 2 threshold 3", {{2, 3, 4}}, [](const V& a) { return softplus(a[0], 2.0, 3.0); }, 3, -2, 2, {},
         inputs_away_from({{2, 3, 4}}, {1.5})},
        {"softplus * x order 3", {{3, 5}}, [](const V& a) { return softplus(a[0], 0.7) * a[0]; }, 3},
        {"gelu", {{3, 5}}, [](const V& a) { return gelu(a[0]); }, 3},
        {"gelu tanh", {{2, 3, 4}}, [](const V& a) { return gelu(a[0], GeluApproximate::tanh); }, 3},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.unary: op table, fused backward ops as functions of (g, x)") {
    const std::vector<OpRow> rows = {
        {"relu_backward", {{3, 5}, {3, 5}}, [](const V& a) { return relu_backward(a[0], a[1]); }, 2, -2, 2, {},
         inputs_away_from({{3, 5}, {3, 5}}, {0})},
        {"tanh_backward", {{3, 5}, {3, 5}}, [](const V& a) { return tanh_backward(a[0], a[1]); }, 3},
        {"sigmoid_backward", {{2, 3, 4}, {2, 3, 4}}, [](const V& a) { return sigmoid_backward(a[0], a[1]); }, 3},
        {"softplus_backward", {{3, 5}, {3, 5}}, [](const V& a) { return softplus_backward(a[0], a[1], 1.0, 20.0); }, 3},
        {"softplus_backward beta 2 threshold 3", {{3, 5}, {3, 5}},
         [](const V& a) { return softplus_backward(a[0], a[1], 2.0, 3.0); }, 2, -2, 2, {},
         inputs_away_from({{3, 5}, {3, 5}}, {1.5})},
        {"gelu_backward", {{3, 5}, {3, 5}}, [](const V& a) { return gelu_backward(a[0], a[1]); }, 2},
        {"gelu_backward tanh", {{2, 3, 4}, {2, 3, 4}},
         [](const V& a) { return gelu_backward(a[0], a[1], GeluApproximate::tanh); }, 2},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.unary: values against hand-computed numbers") {
    // References from mpmath at 40 digits.
    auto x = tensor<double>({-3, -1, -0.5, 0.5, 1, 2, 3.5});
    CHECK(allclose(gelu(x), tensor<double>({-0.00404969409489028358, -0.15865525393145705141, -0.15426876936299344818,
                                            0.34573123063700655182, 0.84134474606854294859, 1.9544997361036415856,
                                            3.4991857982233756624}),
                   1e-15, 1e-14));
    CHECK(allclose(gelu(x, GeluApproximate::tanh),
                   tensor<double>({-0.0036373920817730188378, -0.15880800939172329522, -0.15428599017485607796,
                                   0.34571400982514392204, 0.84119199060827670478, 1.9545976940877750188,
                                   3.4993838023446263367}),
                   1e-15, 1e-14));
    // The far negative tail, where 0.5 (1 + erf(x/√2)) would have no correct digit left.
    CHECK(allclose(gelu(tensor<double>({-12, -8, -6})),
                   tensor<double>({-2.1317785344932147972e-32, -4.9767684594174272988e-15, -5.9195258702261888442e-9}), 0,
                   1e-14));
    CHECK(allclose(gelu_backward(ones<double>(Shape{3}), tensor<double>({-12, -8, 7})),
                   tensor<double>({-2.5578956616748956241e-31, -3.9796072610867959891e-14, 1.0000000000626632303}), 0, 1e-14));
    CHECK(allclose(gelu(tensor<float>({-12, -8, -6})),
                   tensor<float>({-2.1317785344932147972e-32f, -4.9767684594174272988e-15f, -5.9195258702261888442e-9f}), 0,
                   1e-6));
    auto xf = tensor<float>({-3, -1, -0.5, 0.5, 1, 2, 3.5});
    CHECK(allclose(gelu(xf), tensor<float>({-0.00404969409f, -0.158655254f, -0.154268769f, 0.345731231f, 0.841344746f,
                                            1.95449974f, 3.49918580f}),
                   1e-6, 0));
    CHECK(allclose(gelu(xf, GeluApproximate::tanh), tensor<float>({-0.00363739208f, -0.158808009f, -0.154285990f,
                                                                   0.345714010f, 0.841191991f, 1.95459769f, 3.49938380f}),
                   1e-6, 0));
    CHECK(allclose(softplus(tensor<double>({-3, 0, 1.5})),
                   tensor<double>({0.048587351573742058759, 0.69314718055994530942, 1.7014132779827524095}), 1e-16, 1e-15));
    CHECK(allclose(elu(tensor<double>({-2, -0.5, 0.75}), 1.5),
                   tensor<double>({1.5 * -0.86466471676338730811, -0.59020401043104986459, 0.75}), 1e-16, 1e-15));
    CHECK(allclose(leaky_relu(tensor<double>({-2, 0, 3}), 0.2), tensor<double>({-0.4, 0, 3}), 0, 0));
    CHECK(allclose(log1p(tensor<double>({1e-10, -0.5})), tensor<double>({9.9999999995e-11, std::log(0.5)}), 0, 1e-15));
    CHECK(allclose(rsqrt(tensor<double>({4, 0.25, 2})), tensor<double>({0.5, 2, 1 / std::sqrt(2.0)}), 0, 0));
    CHECK(allclose(abs(tensor<double>({-2.5, 0, 3})), tensor<double>({2.5, 0, 3}), 0, 0));
    CHECK(allclose(sin(tensor<double>({0.5, -2})), tensor<double>({std::sin(0.5), std::sin(-2.0)}), 0, 1e-15));
    CHECK(allclose(cos(tensor<double>({0.5, -2})), tensor<double>({std::cos(0.5), std::cos(-2.0)}), 0, 1e-15));
    CHECK(allclose(clamp(tensor<double>({-3, -1, 0, 2, 5}), -1.0, 2.0), tensor<double>({-1, -1, 0, 2, 2}), 0, 0));
    CHECK(allclose(clamp(tensor<double>({-3, 5}), std::nullopt, 2.0), tensor<double>({-3, 2}), 0, 0));
  }

  TEST_CASE("ops.pow: special exponents, negative bases and the zero exponent") {
    auto x = tensor<double>({-2, -0.5, 0.5, 3});
    CHECK(allclose(pow(x, 3.0), tensor<double>({-8, -0.125, 0.125, 27}), 0, 0));
    CHECK(allclose(pow(x, 2.0), tensor<double>({4, 0.25, 0.25, 9}), 0, 0));
    CHECK(allclose(pow(x, -1.0), tensor<double>({-0.5, -2, 2, 1.0 / 3}), 0, 0));
    CHECK(allclose(pow(x, -2.0), tensor<double>({0.25, 4, 4, 1.0 / 9}), 0, 0));
    CHECK(allclose(pow(x, 4.0), tensor<double>({16, 0.0625, 0.0625, 81}), 0, 1e-15));
    CHECK(allclose(pow(tensor<double>({4, 0.25}), 0.5), tensor<double>({2, 0.5}), 0, 0));
    CHECK(allclose(pow(tensor<double>({4, 0.25}), -0.5), tensor<double>({0.5, 2}), 0, 0));
    CHECK(allclose(pow(tensor<double>({2, 3}), 1.5), tensor<double>({std::pow(2.0, 1.5), std::pow(3.0, 1.5)}), 0, 1e-15));
    auto p = pow(tensor<double>({-2}), 1.5);
    CHECK(std::isnan(p.item()));
    // x^0 is 1 everywhere (NaN and 0 included), and its gradient is 0, not 0 * 0^-1.
    CHECK(allclose(pow(tensor<double>({0, std::nan(""), -3}), 0.0), tensor<double>({1, 1, 1}), 0, 0));
    auto z = tensor<double>({0.0, 2.0}).requires_grad_();
    CHECK(allclose(grad(sum(pow(z, 0.0)), z), tensor<double>({0, 0}), 0, 0));
    auto w = tensor<double>({-2.0, 3.0}).requires_grad_();
    CHECK(allclose(grad(sum(pow(w, 3.0)), w), tensor<double>({12, 27}), 0, 1e-15));
  }

  TEST_CASE("ops.unary: gradients at kinks follow PyTorch") {
    auto at = [](auto f) {
      auto x = tensor<double>({-1.0, 0.0, 1.0}).requires_grad_();
      return grad(sum(f(x)), x);
    };
    CHECK(allclose(at([](const auto& x) { return abs(x); }), tensor<double>({-1, 0, 1}), 0, 0));
    CHECK(allclose(at([](const auto& x) { return relu(x); }), tensor<double>({0, 0, 1}), 0, 0));
    CHECK(allclose(at([](const auto& x) { return leaky_relu(x, 0.25); }), tensor<double>({0.25, 0.25, 1}), 0, 0));
    CHECK(allclose(at([](const auto& x) { return elu(x, 2.0); }), tensor<double>({2 * std::exp(-1.0), 2, 1}), 0, 1e-15));
    // clamp passes the gradient on the closed interval [min, max].
    CHECK(allclose(at([](const auto& x) { return clamp(x, 0.0, 1.0); }), tensor<double>({0, 1, 1}), 0, 0));
    CHECK(allclose(at([](const auto& x) { return clamp(x, -1.0, 0.0); }), tensor<double>({1, 1, 0}), 0, 0));
    CHECK(allclose(at([](const auto& x) { return clamp(x, std::nullopt, -0.5); }), tensor<double>({1, 0, 0}), 0, 0));
  }

  TEST_CASE("ops.softplus: linear above the threshold, log1p(exp) below") {
    // beta x > threshold gives exactly x (not x + 3e-9); beta x == threshold is still the log form.
    auto y = softplus(tensor<double>({19.5, 20.5, 9.9, 10.5, 10.0}), 1.0, 20.0);
    CHECK(y(0) == doctest::Approx(19.500000003398267814).epsilon(1e-15));
    CHECK(y(1) == 20.5);
    auto y2 = softplus(tensor<double>({9.9, 10.5, 10.0, -1.0}), 2.0, 20.0);
    CHECK(y2(0) == doctest::Approx(9.9000000012587493581).epsilon(1e-15));
    CHECK(y2(1) == 10.5);
    CHECK(y2(2) == doctest::Approx(std::log1p(std::exp(20.0)) / 2).epsilon(1e-15));
    CHECK(y2(3) == doctest::Approx(0.063464005521486248222).epsilon(1e-15));
    // The gradient is sigmoid(beta x) below, and exactly 1 above.
    auto x = tensor<double>({9.9, 10.5, -1.0}).requires_grad_();
    auto g = grad(sum(softplus(x, 2.0, 20.0)), x);
    CHECK(g(0) == doctest::Approx(0.9999999974825012869).epsilon(1e-15));
    CHECK(g(1) == 1.0);
    CHECK(g(2) == doctest::Approx(0.11920292202211755594).epsilon(1e-15));
    // No overflow to inf/NaN far above the threshold, in float either.
    auto big = softplus(tensor<float>({1e30f, -1e30f}));
    CHECK(big(0) == 1e30f);
    CHECK(big(1) == 0.0f);
  }

  // Eigen 3.4's vectorised exp gives the smallest normal number (~1e-308 double, ~1e-38 float)
  // at -inf where std::exp gives 0. 37 elements fill SIMD packets at any width and leave a tail.
  TEST_CASE_TEMPLATE("ops.exp: exactly 0 at -inf in every SIMD lane; inf and NaN pass through", T, float, double) {
    const T inf = std::numeric_limits<T>::infinity();
    auto is_zero = [](const Tensor<T>& t) { return std::all_of(t.data(), t.data() + t.numel(), [](T v) { return v == T(0); }); };
    CHECK(is_zero(exp(full<T>(Shape{37}, -inf))));
    // A finite mask bias (the Transformer's -1e9) and the first argument whose exp rounds to 0.
    CHECK(is_zero(exp(full<T>(Shape{37}, T(-1e9)))));
    CHECK(is_zero(exp(full<T>(Shape{37}, std::is_same_v<T, float> ? T(-104) : T(-745.2)))));
    // softplus(-inf) = log1p(exp(-inf)) / beta, and elu's gradient at -inf is alpha exp(-inf) g.
    CHECK(is_zero(softplus(full<T>(Shape{37}, -inf))));
    auto x = full<T>(Shape{37}, -inf).requires_grad_();
    CHECK(is_zero(grad(sum(elu(x)), x)));
    // The select that zeroes -inf leaves the other special values alone.
    const std::array<T, 4> special{-inf, T(0), inf, std::numeric_limits<T>::quiet_NaN()};
    std::vector<T> mixed(37);
    for (std::size_t i = 0; i < mixed.size(); ++i) mixed[i] = special[i % 4];
    const auto y = exp(from_vector<T>(mixed));
    for (std::int64_t i = 0; i < 37; ++i) {
      INFO("exp(", mixed[static_cast<std::size_t>(i)], ") at ", i, " gave ", y(i));
      if (i % 4 == 3) CHECK(std::isnan(y(i)));
      else CHECK(y(i) == std::array<T, 3>{T(0), T(1), inf}[static_cast<std::size_t>(i % 4)]);
    }
  }

  TEST_CASE("ops.unary: NaN propagates through relu, clamp, elu and gelu") {
    const double nan = std::nan("");
    auto x = tensor<double>({nan});
    CHECK(std::isnan(relu(x).item()));
    CHECK(std::isnan(clamp(x, -1.0, 1.0).item()));
    CHECK(std::isnan(leaky_relu(x).item()));
    CHECK(std::isnan(elu(x).item()));
    CHECK(std::isnan(gelu(x).item()));
    CHECK(std::isnan(softplus(x).item()));
    CHECK(std::isnan(abs(x).item()));
  }

  TEST_CASE("ops.unary: float results agree with double to a few ulp") {
    Generator gen(3);
    auto xd = rand<double>(Shape{4099}, gen, -12.0, 12.0);  // odd size: exercises the non-packet tail
    auto xf = to_float(xd);
    auto xr = to_double(xf);  // the float inputs, exactly, in double
    auto pos = rand<double>(Shape{4099}, gen, 0.01, 6.0);
    auto pf = to_float(pos);
    auto pr = to_double(pf);
    auto ones_f = ones<float>(xf.shape());
    auto ones_d = ones<double>(xr.shape());
    // gelu keeps its relative accuracy in the far negative tail (where 1 + erf cancels).
    CHECK(float_error_in_eps(gelu(xf), gelu(xr)) < 8);
    CHECK(float_error_in_eps(sigmoid(xf), sigmoid(xr)) < 4);
    CHECK(float_error_in_eps(softplus(xf), softplus(xr)) < 4);
    CHECK(float_error_in_eps(elu(xf), elu(xr)) < 4);
    CHECK(float_error_in_eps(tanh(pf), tanh(pr)) < 4);
    CHECK(float_error_in_eps(log1p(pf), log1p(pr)) < 4);
    CHECK(float_error_in_eps(rsqrt(pf), rsqrt(pr)) < 2);
    CHECK(float_error_in_eps(pow(pf, 2.7f), pow(pr, 2.7)) < 4);
    CHECK(float_error_in_eps(sin(pf), sin(pr)) < 4);
    // gelu' has a root near -0.75, where only the error against the size of its terms means anything.
    auto gelu_grad_scale = map_scalar(xr, [](double x) {
      return 0.5 * std::erfc(-x / std::sqrt(2.0)) + std::abs(x) * std::exp(-x * x / 2) / std::sqrt(2 * std::numbers::pi);
    });
    CHECK(float_error_in_eps(gelu_backward(ones_f, xf), gelu_backward(ones_d, xr), gelu_grad_scale) < 8);
    // The tanh form is ill-conditioned in its argument v ~ x³ (relative condition 2|v|), so over
    // [-4, 4] (|v| < 6) a few tens of ulp is the honest bound.
    auto x4 = to_float(rand<double>(Shape{1001}, gen, -4.0, 4.0));
    auto x4d = to_double(x4);
    CHECK(float_error_in_eps(gelu(x4, GeluApproximate::tanh), gelu(x4d, GeluApproximate::tanh)) < 20);
    auto tanh_grad_scale = map_scalar(x4d, [](double x) {
      const double k = std::sqrt(2 / std::numbers::pi), v = k * (x + 0.044715 * x * x * x);
      const double s = 1 / (1 + std::exp(-2 * v)), w = k * (1 + 3 * 0.044715 * x * x);
      return s * (1 + std::abs(2 * x * w * (1 - s)));
    });
    CHECK(float_error_in_eps(gelu_backward(ones<float>(x4.shape()), x4, GeluApproximate::tanh),
                             gelu_backward(ones<double>(x4.shape()), x4d, GeluApproximate::tanh), tanh_grad_scale) < 40);
  }

  TEST_CASE("ops.unary: fused backward ops equal the composed formulas") {
    Generator gen(11);
    const Shape s{7, 13};
    auto x = rand<double>(s, gen, -4.0, 4.0);
    auto g = rand<double>(s, gen, -1.0, 1.0);
    auto t = tanh(x), y = sigmoid(x);
    CHECK(allclose(relu_backward(g, x), mul(g, gt(x, 0.0)), 0, 0));
    CHECK(allclose(tanh_backward(g, t), mul(g, sub(1.0, mul(t, t))), 1e-16, 1e-15));
    CHECK(allclose(sigmoid_backward(g, y), mul(g, mul(y, sub(1.0, y))), 1e-16, 1e-15));
    // softplus (below its threshold) and tanh-gelu differentiated through their composed forms.
    auto w = rand<double>(s, gen, -1.0, 1.0);
    CHECK(allclose(input_grad([](const auto& v) { return softplus(v, 1.5); }, x, w),
                   input_grad([](const auto& v) { return div(log1p(exp(mul(v, 1.5))), 1.5); }, x, w), 1e-15, 1e-14));
    CHECK(allclose(input_grad([](const auto& v) { return sigmoid(v); }, x, w),
                   input_grad([](const auto& v) { return div(1.0, add(exp(neg(v)), 1.0)); }, x, w), 1e-15, 1e-14));
    CHECK(allclose(input_grad([](const auto& v) { return tanh(v); }, x, w),
                   input_grad([](const auto& v) { return sub(div(2.0, add(exp(mul(v, -2.0)), 1.0)), 1.0); }, x, w), 1e-15,
                   1e-13));
    const double k = std::sqrt(2 / std::numbers::pi);
    CHECK(allclose(input_grad([](const auto& v) { return gelu(v, GeluApproximate::tanh); }, x, w),
                   input_grad([k](const auto& v) { return mul(mul(v, 0.5), add(tanh(mul(add(v, mul(pow(v, 3.0), 0.044715)), k)), 1.0)); },
                              x, w),
                   1e-15, 1e-14));
    // Exact gelu: Φ(x) + x φ(x), from std::erf.
    auto dgelu = map_scalar(x, [](double v) {
      return 0.5 * (1 + std::erf(v / std::sqrt(2.0))) + v * std::exp(-v * v / 2) / std::sqrt(2 * std::numbers::pi);
    });
    CHECK(allclose(gelu_backward(g, x), mul(g, dgelu), 1e-16, 1e-14));
    // The same in float: one pass against the double formula.
    auto gf = to_float(g), xf = to_float(x);
    CHECK(allclose(gelu_backward(gf, xf), to_float(mul(to_double(gf), map_scalar(to_double(xf), [](double v) {
                                            return 0.5 * (1 + std::erf(v / std::sqrt(2.0))) +
                                                   v * std::exp(-v * v / 2) / std::sqrt(2 * std::numbers::pi);
                                          }))),
                   1e-6, 1e-6));
  }

  TEST_CASE("ops.unary: first-order backward builds no graph; create_graph records the fused op") {
    auto x = tensor<double>({-0.5, 0.25, 1.5}).requires_grad_();
    for (const auto& [op, f] : std::vector<std::pair<std::string, Tensor<double> (*)(const Tensor<double>&)>>{
             {"relu_backward", [](const Tensor<double>& v) { return relu(v); }},
             {"tanh_backward", [](const Tensor<double>& v) { return tanh(v); }},
             {"sigmoid_backward", [](const Tensor<double>& v) { return sigmoid(v); }},
             {"softplus_backward", [](const Tensor<double>& v) { return softplus(v); }},
             {"gelu_backward", [](const Tensor<double>& v) { return gelu(v); }}}) {
      const std::string name = op;
      INFO(name);
      auto g1 = grad(sum(f(x)), x);
      CHECK_FALSE(g1.requires_grad());
      auto g2 = grad(sum(f(x)), x, {.create_graph = true});
      REQUIRE(g2.grad_fn());
      CHECK(std::string(g2.grad_fn()->name()) == name);
      CHECK(allclose(g1, g2, 0, 0));
    }
  }

  TEST_CASE("ops.unary: bad input is a clear error") {
    auto x = tensor<double>({{1, 2, 3}, {4, 5, 6}});
    METAGRAD_CHECK_ERROR(clamp(x, 2.0, 1.0), "clamp", "min 2", "max 1", "[2, 3]");
    METAGRAD_CHECK_ERROR(clamp(x, std::nullopt, std::nullopt), "clamp", "at least one", "[2, 3]");
    METAGRAD_CHECK_ERROR(clamp(x, std::nan(""), 1.0), "clamp", "NaN", "[2, 3]");
    METAGRAD_CHECK_ERROR(softplus(x, 0.0), "softplus", "beta", "[2, 3]");
    auto g = tensor<double>({1, 2, 3});
    METAGRAD_CHECK_ERROR(relu_backward(g, x), "relu_backward", "[3]", "[2, 3]");
    METAGRAD_CHECK_ERROR(tanh_backward(g, x), "tanh_backward", "[3]", "[2, 3]");
    METAGRAD_CHECK_ERROR(sigmoid_backward(g, x), "sigmoid_backward", "[3]", "[2, 3]");
    METAGRAD_CHECK_ERROR(softplus_backward(g, x, 1.0, 20.0), "softplus_backward", "[3]", "[2, 3]");
    METAGRAD_CHECK_ERROR(gelu_backward(g, x), "gelu_backward", "[3]", "[2, 3]");
  }
}
