// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <limits>

#include "metagrad/ops/loss.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using metagrad::testing::OpRow;
using V = std::vector<Tensor<double>>;

namespace {
const IndexTensor kLabels = from_vector<std::int64_t>({4, 0, 2}, Shape{3});

/// The Hessian of f at x times v, by double backward.
template <class F>
Tensor<double> hvp(F&& f, const Tensor<double>& x0, const Tensor<double>& v) {
  auto x = x0.detach().requires_grad_();
  const auto g = grad(f(x), x, GradOptions<double>{.create_graph = true});
  return grad(sum(mul(g, v)), x);
}
}  // namespace

TEST_SUITE("ops.loss") {
  TEST_CASE("ops.loss: op table, N=3 C=5; cross_entropy and log_softmax + nll to order 3") {
    const std::vector<OpRow> rows = {
        {"cross_entropy mean", {{3, 5}}, [](const V& a) { return cross_entropy(a[0], kLabels); }, 3},
        {"cross_entropy sum", {{3, 5}}, [](const V& a) { return cross_entropy(a[0], kLabels, Reduction::Sum); }, 3},
        {"cross_entropy none", {{3, 5}}, [](const V& a) { return cross_entropy(a[0] * a[0], kLabels, Reduction::None); }},
        {"cross_entropy_backward (fused) in x and g", {{3, 5}, {3}},
         [](const V& a) {
           // shift 0 and log_sum = log Σ exp(x) rebuild softmax exactly; g is the per-sample gradient.
           const auto x = a[0].detach();
           const auto log_sum = logsumexp(x, {1});
           return detail::cross_entropy_backward(a[0], a[1], kLabels, zeros<double>(Shape{3}), log_sum, 0.5);
         }},
        {"nll of log_softmax", {{3, 5}}, [](const V& a) { return nll_loss(log_softmax(a[0], 1), kLabels); }, 3},
        {"nll none", {{3, 5}}, [](const V& a) { return nll_loss(a[0] * a[0], kLabels, Reduction::None); }},
        {"cross_entropy soft labels, both inputs", {{3, 5}, {3, 5}},
         [](const V& a) { return cross_entropy(a[0], a[1]); }, 2, 0.1, 1.0},
        {"cross_entropy soft labels none", {{3, 5}, {3, 5}},
         [](const V& a) { return cross_entropy(a[0], a[1], Reduction::None); }, 2, 0.1, 1.0},
        {"mse mean", {{3, 5}, {3, 5}}, [](const V& a) { return mse_loss(a[0], a[1]); }},
        {"mse none", {{3, 5}, {3, 5}}, [](const V& a) { return mse_loss(a[0] * a[1], a[1], Reduction::None); }},
        {"l1 sum", {{3, 5}, {3, 5}}, [](const V& a) { return l1_loss(a[0], a[1], Reduction::Sum); }},
        {"l1 none", {{4}, {4}}, [](const V& a) { return l1_loss(a[0] * a[0], a[1], Reduction::None); }},
        {"kl_div batchmean, both inputs", {{3, 5}, {3, 5}},
         [](const V& a) { return kl_div(a[0], a[1], Reduction::BatchMean); }, 2, 0.1, 1.0},
        {"kl_div none", {{3, 5}, {3, 5}}, [](const V& a) { return kl_div(a[0], a[1], Reduction::None); }, 2, 0.1, 1.0},
        {"bce with logits mean", {{3, 5}, {3, 5}},
         [](const V& a) { return binary_cross_entropy_with_logits(a[0], a[1]); }, 2, -3.0, 3.0,
         {}, [](Generator& gen) { return V{rand<double>(Shape{3, 5}, gen, -3, 3), rand<double>(Shape{3, 5}, gen, 0, 1)}; }},
        {"bce with logits none", {{3, 5}, {3, 5}},
         [](const V& a) { return binary_cross_entropy_with_logits(a[0], a[1], Reduction::None); }, 3},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.cross_entropy: known values for each reduction") {
    const auto logits = tensor<double>({{1, 2, 3}, {0, 0, 0}});
    const auto labels = from_vector<std::int64_t>({2, 1}, Shape{2});
    const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3;  // 0.40760596444...
    const double l1 = std::log(3.0);
    CHECK(l0 == doctest::Approx(0.4076059644443806).epsilon(1e-15));
    CHECK(cross_entropy(logits, labels).item() == doctest::Approx((l0 + l1) / 2).epsilon(1e-15));
    CHECK(cross_entropy(logits, labels, Reduction::Sum).item() == doctest::Approx(l0 + l1).epsilon(1e-15));
    CHECK(allclose(cross_entropy(logits, labels, Reduction::None), tensor<double>({l0, l1}), 0, 1e-15));
    // Stable at large logits: the loss of a confident right answer is 0, of a wrong one the margin.
    const auto big = tensor<double>({{1000, 0}, {1000, 0}});
    CHECK(allclose(cross_entropy(big, from_vector<std::int64_t>({0, 1}, Shape{2}), Reduction::None),
                   tensor<double>({0, 1000}), 0, 1e-15));
  }

  TEST_CASE("ops.cross_entropy: equals nll_loss(log_softmax) and soft labels that are one-hot, with gradients") {
    Generator gen(4);
    const auto x0 = randn<double>(Shape{3, 5}, gen);
    auto x = x0.detach().requires_grad_();
    const auto fused = cross_entropy(x, kLabels);
    const auto composed = nll_loss(log_softmax(x, 1), kLabels);
    auto onehot = zeros<double>(Shape{3, 5});
    for (std::int64_t i = 0; i < 3; ++i) onehot.fresh_data()[i * 5 + kLabels(i)] = 1;
    const auto soft = cross_entropy(x, onehot);
    CHECK(fused.item() == doctest::Approx(composed.item()).epsilon(1e-15));
    CHECK(fused.item() == doctest::Approx(soft.item()).epsilon(1e-15));
    const auto g_fused = grad(fused, x), g_composed = grad(composed, x), g_soft = grad(soft, x);
    CHECK(allclose(g_fused, g_composed, 1e-16, 1e-14));
    CHECK(allclose(g_fused, g_soft, 1e-16, 1e-14));
  }

  // Masked logits (-inf) get exactly no gradient, fused or through nll_loss(log_softmax), and a fully
  // masked row gives NaN both ways (log Σ exp = -inf minus x_y = -inf, as in PyTorch). Eigen 3.4's
  // vectorised exp gives ~1e-308 (~1e-38 in float) at -inf, which leaked into both; 37 classes
  // fill SIMD packets at any width and leave a tail.
  TEST_CASE_TEMPLATE("ops.cross_entropy: masked (-inf) logits get exactly 0 gradient", T, float, double) {
    const T inf = std::numeric_limits<T>::infinity();
    auto is_zero = [](const Tensor<T>& t) { return std::all_of(t.data(), t.data() + t.numel(), [](T v) { return v == T(0); }); };
    auto x = full<T>(Shape{2, 37}, -inf);
    x.mutable_data()[5] = T(0.5);
    x.mutable_data()[37 + 9] = T(-1);
    x.requires_grad_();
    const auto labels = from_vector<std::int64_t>({5, 9}, Shape{2});
    CHECK(is_zero(grad(cross_entropy(x, labels), x)));
    CHECK(is_zero(grad(nll_loss(log_softmax(x, 1), labels), x)));
    const auto masked = full<T>(Shape{1, 37}, -inf);
    const auto one = from_vector<std::int64_t>({0}, Shape{1});
    CHECK(std::isnan(cross_entropy(masked, one).item()));
    CHECK(std::isnan(nll_loss(log_softmax(masked, 1), one).item()));
  }

  TEST_CASE("ops.cross_entropy: Hessian-vector product equals (diag(p) - p pᵀ) v / N") {
    Generator gen(6);
    const auto x = randn<double>(Shape{3, 5}, gen), v = randn<double>(Shape{3, 5}, gen);
    const auto hv = hvp([](const Tensor<double>& t) { return cross_entropy(t, kLabels); }, x, v);
    const auto hv_composed = hvp([](const Tensor<double>& t) { return nll_loss(log_softmax(t, 1), kLabels); }, x, v);
    const auto p = softmax(x, 1);
    auto expect = Tensor<double>::empty(x.shape());
    for (std::int64_t i = 0; i < 3; ++i) {
      double pv = 0;
      for (std::int64_t c = 0; c < 5; ++c) pv += p(i, c) * v(i, c);
      for (std::int64_t c = 0; c < 5; ++c) expect.fresh_data()[i * 5 + c] = p(i, c) * (v(i, c) - pv) / 3;
    }
    CHECK(allclose(hv, expect, 1e-16, 1e-13));
    CHECK(allclose(hv_composed, expect, 1e-16, 1e-13));
  }

  TEST_CASE("ops.nll, mse, l1: known values") {
    const auto logp = tensor<double>({{-1.0, -2.0}, {-0.5, -3.0}});
    const auto labels = from_vector<std::int64_t>({1, 0}, Shape{2});
    CHECK(nll_loss(logp, labels).item() == 1.25);
    CHECK(nll_loss(logp, labels, Reduction::Sum).item() == 2.5);
    auto a = tensor<double>({{1, 2}, {3, 4}}).requires_grad_();
    const auto b = tensor<double>({{0, 2}, {5, 3.5}});
    CHECK(mse_loss(a, b).item() == (1 + 0 + 4 + 0.25) / 4);
    CHECK(mse_loss(a, b, Reduction::Sum).item() == 5.25);
    CHECK(allclose(mse_loss(a, b, Reduction::None), tensor<double>({{1, 0}, {4, 0.25}}), 0));
    CHECK(l1_loss(a, b).item() == (1 + 0 + 2 + 0.5) / 4);
    CHECK(allclose(grad(mse_loss(a, b), a), tensor<double>({{0.5, 0}, {-1, 0.25}}), 1e-16));
    // The l1 gradient at a tie (2 vs 2) is 0.
    CHECK(allclose(grad(l1_loss(a, b, Reduction::Sum), a), tensor<double>({{1, 0}, {-1, 1}}), 0));
  }

  TEST_CASE("ops.kl_div: PyTorch semantics, batchmean, and zeros in the target") {
    const auto input = tensor<double>({{std::log(0.25), std::log(0.75)}, {std::log(0.5), std::log(0.5)}});
    auto target = tensor<double>({{0.5, 0.5}, {1.0, 0.0}});
    const double row0 = 0.5 * (std::log(0.5) - std::log(0.25)) + 0.5 * (std::log(0.5) - std::log(0.75));
    const double row1 = 1.0 * (std::log(1.0) - std::log(0.5));  // the 0 target contributes 0
    CHECK(kl_div(input, target, Reduction::Sum).item() == doctest::Approx(row0 + row1).epsilon(1e-15));
    CHECK(kl_div(input, target, Reduction::BatchMean).item() == doctest::Approx((row0 + row1) / 2).epsilon(1e-15));
    CHECK(kl_div(input, target).item() == doctest::Approx((row0 + row1) / 4).epsilon(1e-15));
    CHECK(kl_div(input, target, Reduction::None)(1, 1) == 0.0);
    // Gradients: -target in the input; log t + 1 - input in the target, 0 where the target is 0.
    auto in = input.detach().requires_grad_();
    target.requires_grad_();
    const auto gs = grad(kl_div(in, target, Reduction::Sum), std::vector{in, target});
    CHECK(allclose(gs[0], tensor<double>({{-0.5, -0.5}, {-1.0, 0.0}}), 0));
    CHECK(allclose(gs[1], tensor<double>({{std::log(0.5) + 1 - std::log(0.25), std::log(0.5) + 1 - std::log(0.75)},
                                          {1 - std::log(0.5), 0.0}}),
                   1e-15));
  }

  TEST_CASE("ops.binary_cross_entropy_with_logits: stable at |x| = 100, in float and double") {
    const auto x = tensor<double>({100, -100, 100, -100, 0});
    const auto y = tensor<double>({1, 1, 0, 0, 0.5});
    const auto l = binary_cross_entropy_with_logits(x, y, Reduction::None);
    CHECK(l(0) == doctest::Approx(std::exp(-100.0)).epsilon(1e-15));  // log1p(e^-100), not log(1) = 0 or inf
    CHECK(l(0) > 0);
    CHECK(l(1) == 100);
    CHECK(l(2) == 100);
    CHECK(l(3) == doctest::Approx(std::exp(-100.0)).epsilon(1e-15));
    CHECK(l(4) == doctest::Approx(std::log(2.0)).epsilon(1e-15));
    auto xg = x.detach().requires_grad_();
    const auto g = grad(binary_cross_entropy_with_logits(xg, y, Reduction::Sum), xg);
    CHECK(allclose(g, tensor<double>({0, -1, 1, 0, 0}), 1e-40));
    // float through the kernel the op uses: finite, and exact where the answer is representable.
    const auto xf = tensor<float>({100, -100, 100}), yf = tensor<float>({1, 1, 0});
    const float total = cpu::sum_binary(xf, yf, [](const auto& a, const auto& b) {
      return a.max(0.0f) - a * b + (-a.abs()).exp().log1p();
    });
    CHECK(total == 200.0f);
  }

  TEST_CASE("ops.loss: bad input names the op, the label and the shapes") {
    const auto logits = zeros<double>(Shape{3, 5});
    const auto bad = from_vector<std::int64_t>({1, 5, 0}, Shape{3});
    METAGRAD_CHECK_ERROR(cross_entropy(logits, bad), "cross_entropy", "label 5", "position 1", "[0, 5)", "[3, 5]", "[3]");
    METAGRAD_CHECK_ERROR(cross_entropy(logits, from_vector<std::int64_t>({-1, 0, 0}, Shape{3})), "cross_entropy",
                         "label -1", "[3, 5]");
    METAGRAD_CHECK_ERROR(nll_loss(logits, bad), "nll_loss", "label 5", "[3, 5]", "[3]");
    METAGRAD_CHECK_ERROR(cross_entropy(zeros<double>(Shape{3, 5, 2}), kLabels), "cross_entropy", "[N, C]", "[3, 5, 2]");
    METAGRAD_CHECK_ERROR(cross_entropy(logits, from_vector<std::int64_t>({0, 1}, Shape{2})), "cross_entropy", "[2]",
                         "[3, 5]");
    METAGRAD_CHECK_ERROR(cross_entropy(logits, zeros<double>(Shape{3, 4})), "cross_entropy", "[3, 4]", "[3, 5]");
    METAGRAD_CHECK_ERROR(mse_loss(zeros<double>(Shape{2, 3}), zeros<double>(Shape{3})), "mse_loss", "[2, 3]", "[3]");
    METAGRAD_CHECK_ERROR(l1_loss(zeros<double>(Shape{2, 3}), zeros<double>(Shape{3, 2})), "l1_loss", "[2, 3]", "[3, 2]");
    METAGRAD_CHECK_ERROR(mse_loss(logits, logits, Reduction::BatchMean), "mse_loss", "batchmean");
    METAGRAD_CHECK_ERROR(cross_entropy(zeros<double>(Shape{0, 5}), IndexTensor::empty(Shape{0})), "cross_entropy",
                         "empty batch", "[0, 5]");
    METAGRAD_CHECK_ERROR(nll_loss(zeros<double>(Shape{5}), kLabels), "nll_loss", "[N, C]", "[5]");
    METAGRAD_CHECK_ERROR(nll_loss(logits, from_vector<std::int64_t>({0, 1, 2, 3}, Shape{4})), "nll_loss", "[4]", "[3, 5]");
    METAGRAD_CHECK_ERROR(kl_div(logits, zeros<double>(Shape{5, 3})), "kl_div", "[3, 5]", "[5, 3]");
    METAGRAD_CHECK_ERROR(kl_div(scalar_tensor(0.5), scalar_tensor(0.5), Reduction::BatchMean), "kl_div", "batchmean",
                         "[]");
    METAGRAD_CHECK_ERROR(binary_cross_entropy_with_logits(logits, zeros<double>(Shape{3})),
                         "binary_cross_entropy_with_logits", "[3, 5]", "[3]");
    METAGRAD_CHECK_ERROR(mse_loss(zeros<double>(Shape{0, 2}), zeros<double>(Shape{0, 2})), "mse_loss", "empty", "[0, 2]");
    METAGRAD_CHECK_ERROR(l1_loss(logits, zeros<double>(Shape{3, 5}), Reduction::BatchMean), "l1_loss", "batchmean");
  }

  TEST_CASE("ops.cross_entropy: labels changed in place after the forward pass are caught") {
    auto x = zeros<double>(Shape{3, 5}).requires_grad_();
    auto labels = from_vector<std::int64_t>({0, 1, 2}, Shape{3});
    const auto loss = cross_entropy(x, labels);
    labels.mutable_data()[0] = 4;
    METAGRAD_CHECK_ERROR(grad(loss, x), "cross_entropy", "modified in place");
  }
}
