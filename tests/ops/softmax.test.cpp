// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <limits>

#include "metagrad/ops/softmax.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using metagrad::testing::OpRow;
using V = std::vector<Tensor<double>>;

namespace {
/// softmax along `dim` of a rank-2 double tensor, one slice at a time in long double.
Tensor<double> reference_softmax(const Tensor<double>& x, int dim, bool log) {
  auto out = Tensor<double>::empty(x.shape());
  const std::int64_t rows = x.shape()[0], cols = x.shape()[1];
  const std::int64_t slices = dim == 0 ? cols : rows, n = dim == 0 ? rows : cols;
  for (std::int64_t s = 0; s < slices; ++s) {
    auto index = [&](std::int64_t k) { return dim == 0 ? k * cols + s : s * cols + k; };
    long double total = 0;
    for (std::int64_t k = 0; k < n; ++k) total += std::exp(static_cast<long double>(x.data()[index(k)]));
    for (std::int64_t k = 0; k < n; ++k) {
      const long double v = x.data()[index(k)];
      out.fresh_data()[index(k)] = static_cast<double>(log ? v - std::log(total) : std::exp(v) / total);
    }
  }
  return out;
}
}  // namespace

TEST_SUITE("ops.softmax") {
  TEST_CASE("ops.softmax: op table; log_softmax to order 3") {
    const std::vector<OpRow> rows = {
        {"softmax dim -1", {{3, 5}}, [](const V& a) { return softmax(a[0], -1); }, 3},
        {"softmax dim 0", {{3, 5}}, [](const V& a) { return softmax(a[0], 0); }},
        {"softmax middle dim", {{2, 3, 4}}, [](const V& a) { return softmax(a[0] * a[0], 1); }},
        {"log_softmax dim -1", {{3, 5}}, [](const V& a) { return log_softmax(a[0], -1); }, 3},
        {"log_softmax dim 0", {{3, 5}}, [](const V& a) { return log_softmax(a[0], 0); }, 3},
        {"log_softmax middle dim", {{2, 3, 4}}, [](const V& a) { return log_softmax(a[0], 1); }},
        // softmax(x + bias): a bias varying along the dim, one constant per slice, and a non-last dim.
        {"softmax_with_bias [2,1,5] on [2,3,5]", {{2, 3, 5}, {2, 1, 5}},
         [](const V& a) { return softmax_with_bias(a[0], a[1], -1); }, 3},
        {"softmax_with_bias [5] on [3,5]", {{3, 5}, {5}}, [](const V& a) { return softmax_with_bias(a[0], a[1], 1); }},
        {"softmax_with_bias [2,3,1] on [2,3,4]", {{2, 3, 4}, {2, 3, 1}},
         [](const V& a) { return softmax_with_bias(a[0] * a[0], a[1], 2); }},
        {"softmax_with_bias dim 1", {{2, 3, 4}, {3, 1}}, [](const V& a) { return softmax_with_bias(a[0], a[1], 1); }},
        // The fused backward ops as functions of (g, y) for any y, not only a softmax output.
        {"softmax_backward", {{3, 4}, {3, 4}}, [](const V& a) { return detail::softmax_backward(a[0], a[1], 1); }},
        {"log_softmax_backward dim 0", {{3, 4}, {3, 4}},
         [](const V& a) { return detail::log_softmax_backward(a[0], a[1], 0); }},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.softmax: values against hand computations") {
    const auto x = tensor<double>({1, 2, 3});
    const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
    CHECK(allclose(softmax(x, 0), tensor<double>({std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z}), 1e-16, 1e-15));
    CHECK(allclose(log_softmax(x, 0), tensor<double>({1 - std::log(z), 2 - std::log(z), 3 - std::log(z)}), 1e-16, 1e-15));
    // A rank-0 tensor is one slice of one element.
    CHECK(softmax(scalar_tensor<double>(7.0), 0).item() == 1.0);
  }

  TEST_CASE("ops.softmax: along dim 0, the last dim and a wide non-last dim, against a long double reference") {
    Generator gen(21);
    for (const Shape& shape : {Shape{5, 3}, Shape{4, 300}, Shape{7, 1}, Shape{1, 6}}) {
      const auto x = randn<double>(shape, gen, 0.0, 3.0);
      for (int dim : {0, 1}) {
        INFO("shape ", shape, " dim ", dim);
        CHECK(allclose(softmax(x, dim), reference_softmax(x, dim, false), 1e-16, 1e-14));
        CHECK(allclose(log_softmax(x, dim), reference_softmax(x, dim, true), 1e-14, 1e-14));
        CHECK(allclose(softmax(x, dim - 2), softmax(x, dim), 0, 0));
      }
    }
  }

  TEST_CASE("ops.softmax: stable at extreme inputs, float and double") {
    const auto big = tensor<double>({1000, 1000, 0});
    CHECK(allclose(softmax(big, 0), tensor<double>({0.5, 0.5, 0.0}), 0, 1e-15));
    CHECK(allclose(log_softmax(big, 0), tensor<double>({-std::log(2.0), -std::log(2.0), -1000 - std::log(2.0)}), 0, 1e-15));
    // log_softmax never forms softmax, so a tiny probability keeps its exact logarithm.
    const auto lf = cpu::softmax_dim<cpu::SoftmaxKind::log_softmax>(tensor<float>({0, -200}), 0);
    CHECK(lf(1) == -200.0f);
    const auto sf = cpu::softmax_dim<cpu::SoftmaxKind::softmax>(tensor<float>({100, 100, 100, 100}), 0);
    CHECK(sf.to_vector() == std::vector<float>{0.25f, 0.25f, 0.25f, 0.25f});
    // An all -inf slice has no defined softmax: NaN, as in PyTorch.
    const double inf = std::numeric_limits<double>::infinity();
    CHECK(std::isnan(softmax(tensor<double>({-inf, -inf}), 0)(0)));
    CHECK(softmax(tensor<double>({-inf, 0}), 0).to_vector() == std::vector<double>{0, 1});
    // 17 elements fill SIMD packets at any width: a vectorised exp must give exactly 0 at -inf.
    std::vector<double> masked(17, -inf);
    masked[5] = 0.25;
    const auto one_hot = softmax(from_vector<double>(masked), 0).to_vector();
    std::vector<double> expected(17, 0.0);
    expected[5] = 1.0;
    CHECK(one_hot == expected);
    CHECK(log_softmax(from_vector<double>(masked), 0)(5) == 0.0);
    CHECK(cpu::logsumexp_dim(from_vector<double>(std::vector<double>(17, -inf)), 0, false).item() == -inf);
    const auto all_masked = softmax(from_vector<double>(std::vector<double>(17, -inf)), 0);
    CHECK(std::all_of(all_masked.data(), all_masked.data() + 17, [](double v) { return std::isnan(v); }));
    // The same along a non-last dim (the column-block kernel): [17, 9] with column 1 masked but one row.
    auto cols = full<double>(Shape{17, 9}, -inf);
    cols.mutable_data()[4 * 9 + 1] = -2.0;
    CHECK(softmax(cols, 0)(4, 1) == 1.0);
    CHECK(softmax(cols, 0)(3, 1) == 0.0);
  }

  // Where y = log_softmax(x) is -inf, p = exp(y) is 0, so the gradient g - p Σg is exactly g.
  // Eigen 3.4's vectorised exp gives ~1e-308 (~1e-38 in float) at -inf, so this fails unless
  // the -inf entries sit in SIMD lanes: 37 fills packets at any width and leaves a tail.
  TEST_CASE_TEMPLATE("ops.log_softmax: the backward pass is exactly g where the output is -inf", T, float, double) {
    const T inf = std::numeric_limits<T>::infinity();
    auto is_zero = [](const Tensor<T>& t) { return std::all_of(t.data(), t.data() + t.numel(), [](T v) { return v == T(0); }); };
    // Slices along the last dim (the contiguous kernel) and along dim 0 (the column-block
    // kernel): one live entry per slice, with g = 1 there and 0 elsewhere, so every output is 0.
    for (int dim : {1, 0}) {
      INFO("dim ", dim);
      const Shape shape = dim == 1 ? Shape{2, 37} : Shape{5, 37};
      auto y = full<T>(shape, -inf), g = zeros<T>(shape);
      for (std::int64_t s = 0; s < shape[1 - dim]; ++s) {
        const std::int64_t at = dim == 1 ? s * 37 + 3 : 2 * 37 + s;
        y.mutable_data()[at] = T(0);
        g.mutable_data()[at] = T(1);
      }
      CHECK(is_zero(detail::log_softmax_backward(g, y, dim)));
    }
  }

  TEST_CASE("ops.softmax: fused backward kernels equal the composed rules") {
    Generator gen(8);
    const Shape shape{3, 4, 5};
    for (int dim : {0, 1, 2}) {
      INFO("dim ", dim);
      const auto x = randn<double>(shape, gen), g = randn<double>(shape, gen);
      const auto y = softmax(x, dim), ly = log_softmax(x, dim);
      const auto composed = mul(y, sub(g, sum(mul(g, y), {dim}, true)));
      CHECK(allclose(detail::softmax_backward(g, y, dim), composed, 1e-15, 1e-13));
      const auto composed_log = sub(g, mul(exp(ly), sum(g, {dim}, true)));
      CHECK(allclose(detail::log_softmax_backward(g, ly, dim), composed_log, 1e-15, 1e-13));
    }
  }

  TEST_CASE("ops.softmax: gradient through the graph equals the analytic Jacobian product") {
    auto x = tensor<double>({{0.5, -1.0, 2.0}}).requires_grad_();
    const auto w = tensor<double>({{1.0, 2.0, 3.0}});
    const auto p = softmax(x, 1);
    const auto g = grad(sum(mul(p, w)), x);
    // d/dx Σ w p = p * (w - Σ w p)
    const double wp = p(0, 0) * 1 + p(0, 1) * 2 + p(0, 2) * 3;
    CHECK(allclose(g, tensor<double>({{p(0, 0) * (1 - wp), p(0, 1) * (2 - wp), p(0, 2) * (3 - wp)}}), 1e-16, 1e-14));
  }

  TEST_CASE("ops.softmax: bad dim names the op and the rank") {
    const auto x = ones<double>(Shape{2, 3});
    METAGRAD_CHECK_ERROR(softmax(x, 2), "softmax", "dim 2", "rank 2");
    METAGRAD_CHECK_ERROR(log_softmax(x, -3), "log_softmax", "dim -3", "rank 2");
    METAGRAD_CHECK_ERROR(softmax(scalar_tensor(1.0), 1), "softmax", "dim 1", "rank 0");
    METAGRAD_CHECK_ERROR(detail::softmax_backward(ones<double>(Shape{3, 2}), x, 1), "softmax_backward", "[3, 2]", "[2, 3]");
    METAGRAD_CHECK_ERROR(detail::log_softmax_backward(ones<double>(Shape{2}), x, 0), "log_softmax_backward", "[2]",
                         "[2, 3]");
    METAGRAD_CHECK_ERROR(detail::log_softmax_backward(x, x, 2), "log_softmax_backward", "dim 2", "rank 2");
  }

  TEST_CASE_TEMPLATE("ops.softmax_with_bias: equals softmax(x + bias), masked keys and fully masked rows included", T,
                     float, double) {
    Generator gen(3);
    // Attention's shapes: logits [B, H, S, S], a padding bias [B, 1, 1, S] (large negative or -inf
    // at padded keys; the second sequence's last row of keys is all -inf, so its rows are NaN).
    const auto x = rand<T>(Shape{2, 3, 4, 7}, gen, -4, 4);
    auto bias = zeros<T>(Shape{2, 1, 1, 7});
    T* b = bias.fresh_data();
    b[5] = T(-1e9);
    b[6] = -std::numeric_limits<T>::infinity();
    // Bit for bit the composed form, NaN where it is NaN (along dim 1 the -inf key is a whole slice).
    const auto same_as_composed = [](const Tensor<T>& x, const Tensor<T>& bias, int dim) {
      const auto got = softmax_with_bias(x, bias, dim), want = softmax(x + bias, dim);
      for (std::int64_t i = 0; i < got.numel(); ++i) {
        const T g = got.data()[i], w = want.data()[i];
        if (!((std::isnan(g) && std::isnan(w)) || g == w)) return false;
      }
      return got.shape() == want.shape();
    };
    CHECK(same_as_composed(x, bias, -1));
    CHECK(same_as_composed(x, bias, 1));
    CHECK(same_as_composed(x, rand<T>(Shape{2, 3, 4, 1}, gen), 3));
    for (std::int64_t k = 0; k < 7; ++k) b[7 + k] = -std::numeric_limits<T>::infinity();
    CHECK(same_as_composed(x, bias, 3));
    const auto y = softmax_with_bias(x, bias, 3);
    CHECK(std::isnan(y.data()[y.numel() - 1]));
  }

  TEST_CASE("ops.softmax_with_bias: the bias gets the gradient summed over its broadcast dims") {
    Generator gen(5);
    const auto x = rand<double>(Shape{2, 3, 5}, gen).requires_grad_();
    const auto bias = rand<double>(Shape{2, 1, 5}, gen).requires_grad_();
    const auto w = rand<double>(Shape{2, 3, 5}, gen);
    const auto fused = grad(sum(softmax_with_bias(x, bias, -1) * w), {x, bias});
    const auto composed = grad(sum(softmax(x + bias, -1) * w), {x, bias});
    CHECK(allclose(fused[0], composed[0], 1e-15, 1e-15));
    CHECK(allclose(fused[1], composed[1], 1e-15, 1e-15));
  }

  TEST_CASE("ops.softmax_with_bias: a bias that does not broadcast to the input names the op and both shapes") {
    const auto x = ones<double>(Shape{2, 3});
    METAGRAD_CHECK_ERROR(softmax_with_bias(x, ones<double>(Shape{2, 4}), 1), "softmax_with_bias", "[2, 3]", "[2, 4]");
    METAGRAD_CHECK_ERROR(softmax_with_bias(x, ones<double>(Shape{4, 2, 3}), 1), "softmax_with_bias", "[4, 2, 3]",
                         "[2, 3]");
    METAGRAD_CHECK_ERROR(softmax_with_bias(x, ones<double>(Shape{3}), 2), "softmax_with_bias", "dim 2", "rank 2");
  }

  TEST_CASE("ops.softmax: a rank-0 input is one slice of one element; empty inputs give empty outputs") {
    CHECK(softmax(scalar_tensor(-3.5), 0).item() == 1.0);
    CHECK(log_softmax(scalar_tensor(7.25), -1).item() == 0.0);
    CHECK(softmax(zeros<double>(Shape{2, 0}), 1).shape() == Shape{2, 0});
    CHECK(log_softmax(zeros<double>(Shape{0, 3}), 1).shape() == Shape{0, 3});
  }
}
