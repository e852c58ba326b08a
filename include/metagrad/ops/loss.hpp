// SPDX-License-Identifier: MIT
// Losses with a Reduction: cross_entropy (class labels: a fused log_softmax + pick; or soft
// labels), nll_loss, mse_loss, l1_loss, kl_div (PyTorch semantics, plus batchmean) and the stable
// binary_cross_entropy_with_logits. Labels are checked, and errors name the op, the label and
// the shapes. Every backward rule is written in ops; cross_entropy's is one fused kernel wrapped
// as its own op, whose rule in turn uses softmax, so Hessian-vector products through it are exact.
#pragma once
#include <string_view>

#include "metagrad/backend/loss.hpp"
#include "metagrad/backend/reduce.hpp"
#include "metagrad/backend/softmax.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/softmax.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad {

/// How a loss combines its per-element (or per-sample) terms. batchmean (sum / batch size) is
/// only for kl_div, where it gives the true KL divergence per sample.
enum class Reduction { Mean, Sum, None, BatchMean };

namespace detail {

inline void check_no_batchmean(const char* op, Reduction reduction) {
  check(reduction != Reduction::BatchMean, op, "reduction batchmean is only defined for kl_div");
}

/// Checks input [N, C] and labels [N] with every label in [0, C).
template <Floating T>
void check_class_labels(const char* op, const Tensor<T>& input, const IndexTensor& labels, Reduction reduction) {
  check_no_batchmean(op, reduction);
  check(input.dim() == 2, op, "input must have shape [N, C], got ", input.shape(), " (labels of shape ",
        labels.shape(), ")");
  check(labels.dim() == 1 && labels.shape()[0] == input.shape()[0], op, "labels of shape ", labels.shape(),
        " do not match input of shape ", input.shape(), "; expected [", input.shape()[0], "]");
  check(reduction != Reduction::Mean || input.shape()[0] > 0, op, "mean over an empty batch, input of shape ",
        input.shape());
  const std::int64_t classes = input.shape()[1];
  const std::int64_t* y = labels.data();
  for (std::int64_t i = 0; i < labels.numel(); ++i)
    check(y[i] >= 0 && y[i] < classes, op, "label ", y[i], " at position ", i, " is out of range [0, ", classes,
          ") for input of shape ", input.shape(), " and labels of shape ", labels.shape());
}

/// Labels saved for a backward pass must not have been overwritten since.
inline void check_labels_unchanged(const char* op, const IndexTensor& labels, std::uint64_t version) {
  check(labels.version() == version, op, "labels of shape ", labels.shape(),
        " were modified in place after the forward pass");
}

/// Per-sample losses [N] reduced as asked (the forward value only).
template <Floating T>
Tensor<T> reduce_samples(const Tensor<T>& rows, Reduction reduction) {
  if (reduction == Reduction::None) return rows;
  const T total = backend::sum_all(rows);
  return scalar_tensor<T>(reduction == Reduction::Mean ? total / static_cast<T>(rows.numel()) : total);
}

/// The gradient per sample [N, 1] (or [1, 1] when the loss was reduced to a scalar), times factor.
template <Floating T>
Tensor<T> per_sample(const Tensor<T>& g, std::int64_t n, T factor) {
  const Tensor<T> col = reshape(g, g.dim() == 0 ? Shape{1, 1} : Shape{n, 1});
  return factor == T(1) ? col : mul(col, factor);
}

/// The gradient of cross_entropy in the logits: factor * g_i * (softmax(x_i) - onehot(y_i)), in
/// one pass that rebuilds softmax from the forward's shift and log_sum. Its own rule, for second
/// and higher orders, uses the softmax op.
template <Floating T>
Tensor<T> cross_entropy_backward(const Tensor<T>& x, const Tensor<T>& g, const IndexTensor& labels,
                                 const Tensor<T>& shift, const Tensor<T>& log_sum, T factor) {
  const Tensor<T> out = backend::cross_entropy_backward(x, labels, shift, log_sum, g, g.dim() == 0 ? 0 : 1, factor);
  return record("cross_entropy_backward", out, {x, g}, [labels, factor](const Tensor<T>& u, BackwardContext<T>& c) {
    const auto& x = c.input(0);
    const auto& g = c.input(1);
    const std::int64_t n = x.shape()[0];
    const Tensor<T> p = softmax(x, 1);
    // In x: the scale times softmax's vjp. In g: Σ_c u * (p - onehot), per sample.
    if (c.wants(0)) c.set(0, mul(per_sample(g, n, factor), softmax_backward(u, p, 1)));
    if (c.wants(1)) {
      const Tensor<T> onehot = backend::index_mask<T>(reshape(labels, {n, 1}), x.shape(), 1);
      c.set(1, sum_to(mul(sum(mul(u, sub(p, onehot)), {1}), factor), g.shape()));
    }
  }, [labels, factor](const TangentContext<T>& c) {
    // factor g_i (p_i - onehot_i) moves with g linearly and with x through softmax's Jacobian
    // (symmetric, so its vjp at dx).
    const auto& x = c.input(0);
    const auto& g = c.input(1);
    const std::int64_t n = x.shape()[0];
    const Tensor<T> p = softmax(x, 1);
    Tensor<T> dx, dg;
    if (c.has_tangent(0)) dx = mul(per_sample(g, n, factor), softmax_backward(c.tangent(0), p, 1));
    if (c.has_tangent(1)) {
      const Tensor<T> onehot = backend::index_mask<T>(reshape(labels, {n, 1}), x.shape(), 1);
      dg = mul(per_sample(c.tangent(1), n, factor), sub(p, onehot));
    }
    return add_terms(dx, dg, c.output_shape());
  });
}

/// A loss that is f(input, target) element-wise, reduced. `rule(g_scaled, ctx)` sets the input
/// gradients from the output gradient already scaled for the reduction (1/numel for mean, ...).
/// `tangent(ctx)` gives the element-wise terms' tangent (input's shape), which is reduced here.
template <backend::PointwiseLoss Kind, Floating T, class Rule, class Tangent>
Tensor<T> pointwise_loss(const char* op, const Tensor<T>& input, const Tensor<T>& target, Reduction reduction,
                         Rule rule, Tangent tangent) {
  check(input.shape() == target.shape(), op, "input of shape ", input.shape(), " and target of shape ",
        target.shape(), " must have the same shape");
  Tensor<T> out;
  T factor = 1;
  if (reduction == Reduction::None) {
    out = backend::pointwise_loss<Kind>(op, input, target);
  } else {
    std::int64_t count = 1;
    if (reduction == Reduction::Mean) count = input.numel();
    if (reduction == Reduction::BatchMean) {
      check(input.dim() >= 1, op, "batchmean needs a batch dim, got input of shape ", input.shape());
      count = input.shape()[0];
    }
    check(count > 0, op, "mean over an empty input of shape ", input.shape());
    out = scalar_tensor<T>(backend::pointwise_loss_sum<Kind>(op, input, target) / static_cast<T>(count));
    factor = T(1) / static_cast<T>(count);
  }
  const bool reduced = reduction != Reduction::None;
  return record(op, std::move(out), {input, target}, [factor, rule](const Tensor<T>& g, BackwardContext<T>& c) {
    rule(factor == T(1) ? g : mul(g, factor), c);
  }, [factor, reduced, tangent](const TangentContext<T>& c) {
    const Tensor<T> terms = tangent(c);
    if (!reduced) return terms;
    return factor == T(1) ? sum(terms) : mul(sum(terms), factor);
  });
}

}  // namespace detail

/// Cross entropy of logits [N, C] against class labels [N] in [0, C):
/// loss_i = log Σ_c exp(x_ic) - x_{i, y_i}, fused (no log_softmax tensor is formed).
template <Floating T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const IndexTensor& labels, Reduction reduction = Reduction::Mean) {
  detail::check_class_labels("cross_entropy", logits, labels, reduction);
  const std::int64_t n = logits.shape()[0];
  auto rows = Tensor<T>::empty(Shape{n}), shift = Tensor<T>::empty(Shape{n}), log_sum = Tensor<T>::empty(Shape{n});
  backend::cross_entropy_rows(logits, labels, rows, shift, log_sum);
  const T factor = reduction == Reduction::Mean ? T(1) / static_cast<T>(n) : T(1);
  const bool reduced = reduction != Reduction::None;
  return record("cross_entropy", detail::reduce_samples(rows, reduction), {logits},
                [labels, version = labels.version(), shift, log_sum, factor](const Tensor<T>& g, BackwardContext<T>& c) {
                  detail::check_labels_unchanged("cross_entropy", labels, version);
                  c.set(0, detail::cross_entropy_backward(c.input(0), g, labels, shift, log_sum, factor));
                },
                [labels, shift, log_sum, factor, reduced](const TangentContext<T>& c) {
                  // <dx, d loss / dx>: the fused gradient at a unit output gradient, one pass.
                  const auto& x = c.input(0);
                  const Tensor<T> unit = reduced ? scalar_tensor<T>(1) : full<T>(Shape{x.shape()[0]}, T(1));
                  const Tensor<T> dloss = detail::cross_entropy_backward(x, unit, labels, shift, log_sum, factor);
                  const Tensor<T> per_element = mul(c.tangent(0), dloss);
                  return reduced ? sum(per_element) : sum(per_element, {1});
                });
}

/// Cross entropy of logits [N, C] against soft labels (class probabilities) [N, C]:
/// loss_i = -Σ_c p_ic log_softmax(x)_ic. Differentiable in both.
template <Floating T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Tensor<T>& probs, Reduction reduction = Reduction::Mean) {
  detail::check_no_batchmean("cross_entropy", reduction);
  check(logits.dim() == 2, "cross_entropy", "logits must have shape [N, C], got ", logits.shape(),
        " (probabilities of shape ", probs.shape(), ")");
  check(probs.shape() == logits.shape(), "cross_entropy", "probabilities of shape ", probs.shape(),
        " do not match logits of shape ", logits.shape());
  check(reduction != Reduction::Mean || logits.shape()[0] > 0, "cross_entropy", "mean over an empty batch, logits of shape ",
        logits.shape());
  const Tensor<T> rows = neg(sum(mul(probs, log_softmax(logits, 1)), {1}));
  if (reduction == Reduction::None) return rows;
  return reduction == Reduction::Mean ? mean(rows) : sum(rows);
}

/// Negative log-likelihood of log-probabilities [N, C] at class labels [N]: loss_i = -logp_{i, y_i}.
template <Floating T>
Tensor<T> nll_loss(const Tensor<T>& logp, const IndexTensor& labels, Reduction reduction = Reduction::Mean) {
  detail::check_class_labels("nll_loss", logp, labels, reduction);
  const std::int64_t n = logp.shape()[0];
  auto rows = Tensor<T>::empty(Shape{n});
  backend::nll_rows(logp, labels, rows);
  const T factor = reduction == Reduction::Mean ? T(1) / static_cast<T>(n) : T(1);
  return record("nll_loss", detail::reduce_samples(rows, reduction), {logp},
                [labels, version = labels.version(), factor](const Tensor<T>& g, BackwardContext<T>& c) {
                  detail::check_labels_unchanged("nll_loss", labels, version);
                  const Shape& shape = c.input(0).shape();
                  const Tensor<T> onehot = backend::index_mask<T>(reshape(labels, {shape[0], 1}), shape, 1);
                  c.set(0, mul(detail::per_sample(g, shape[0], -factor), onehot));
                },
                [labels, factor, reduction](const TangentContext<T>& c) {
                  // -factor dlogp[i, y_i], reduced like the loss.
                  const Shape& shape = c.input(0).shape();
                  const Tensor<T> onehot = backend::index_mask<T>(reshape(labels, {shape[0], 1}), shape, 1);
                  const Tensor<T> picked = mul(c.tangent(0), onehot);
                  return reduction == Reduction::None ? neg(sum(picked, {1})) : mul(sum(picked), -factor);
                });
}

/// Mean squared error: (input - target)², reduced. Shapes must be equal (no broadcasting).
template <Floating T>
Tensor<T> mse_loss(const Tensor<T>& input, const Tensor<T>& target, Reduction reduction = Reduction::Mean) {
  detail::check_no_batchmean("mse_loss", reduction);
  return detail::pointwise_loss<backend::PointwiseLoss::mse>(
      "mse_loss", input, target, reduction,
      [](const Tensor<T>& g, BackwardContext<T>& c) {
        const Tensor<T> d = mul(mul(sub(c.input(0), c.input(1)), T(2)), g);
        if (c.wants(0)) c.set(0, d);
        if (c.wants(1)) c.set(1, neg(d));
      },
      [](const TangentContext<T>& c) {
        const Tensor<T> diff = detail::sub_terms(c.tangent(0), c.tangent(1), c.input(0).shape());
        return mul(mul(sub(c.input(0), c.input(1)), T(2)), diff);
      });
}

/// Mean absolute error: |input - target|, reduced. The gradient at input == target is 0.
template <Floating T>
Tensor<T> l1_loss(const Tensor<T>& input, const Tensor<T>& target, Reduction reduction = Reduction::Mean) {
  detail::check_no_batchmean("l1_loss", reduction);
  return detail::pointwise_loss<backend::PointwiseLoss::l1>(
      "l1_loss", input, target, reduction,
      [](const Tensor<T>& g, BackwardContext<T>& c) {
        const Tensor<T>& x = c.input(0);
        const Tensor<T> sign = backend::sign_of_difference(x.detach(), c.input(1).detach(), x.shape());
        const Tensor<T> d = mul(sign, g);
        if (c.wants(0)) c.set(0, d);
        if (c.wants(1)) c.set(1, neg(d));
      },
      [](const TangentContext<T>& c) {
        const Tensor<T>& x = c.input(0);
        const Tensor<T> sign = backend::sign_of_difference(x.detach(), c.input(1).detach(), x.shape());
        return mul(sign, detail::sub_terms(c.tangent(0), c.tangent(1), x.shape()));
      });
}

/// KL divergence as PyTorch's kl_div: `input` holds log-probabilities, `target` probabilities,
/// and the element-wise term is target * (log target - input), 0 where target is 0. mean
/// averages over every element; batchmean divides the sum by the batch size (dim 0), which is
/// the KL divergence per sample. Where target is 0, its gradient is taken as 0.
template <Floating T>
Tensor<T> kl_div(const Tensor<T>& input, const Tensor<T>& target, Reduction reduction = Reduction::Mean) {
  return detail::pointwise_loss<backend::PointwiseLoss::kl_div>(
      "kl_div", input, target, reduction,
      [](const Tensor<T>& g, BackwardContext<T>& c) {
        const Tensor<T>& x = c.input(0);
        const Tensor<T>& t = c.input(1);
        if (c.wants(0)) c.set(0, neg(mul(t, g)));
        if (c.wants(1)) {
          // log t + 1 - x where t != 0; log of a safe divisor keeps the masked entries finite.
          const auto [nonzero, safe] = detail::nonzero_and_safe(t);
          c.set(1, mul(mul(add(sub(log(safe), x), T(1)), nonzero), g));
        }
      },
      [](const TangentContext<T>& c) {
        const Tensor<T>& x = c.input(0);
        const Tensor<T>& t = c.input(1);
        Tensor<T> dx, dt;
        if (c.has_tangent(0)) dx = neg(mul(t, c.tangent(0)));
        if (c.has_tangent(1)) {
          const auto [nonzero, safe] = detail::nonzero_and_safe(t);
          dt = mul(mul(add(sub(log(safe), x), T(1)), nonzero), c.tangent(1));
        }
        return detail::add_terms(dx, dt, x.shape());
      });
}

/// Binary cross entropy of logits x against targets y in [0, 1], in the stable form
/// max(x, 0) - x*y + log(1 + exp(-|x|)), which neither overflows nor loses log(1 + tiny).
template <Floating T>
Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>& logits, const Tensor<T>& targets,
                                           Reduction reduction = Reduction::Mean) {
  detail::check_no_batchmean("binary_cross_entropy_with_logits", reduction);
  return detail::pointwise_loss<backend::PointwiseLoss::bce_with_logits>(
      "binary_cross_entropy_with_logits", logits, targets, reduction,
      [](const Tensor<T>& g, BackwardContext<T>& c) {
        const Tensor<T>& x = c.input(0);
        if (c.wants(0)) c.set(0, mul(sub(sigmoid(x), c.input(1)), g));
        if (c.wants(1)) c.set(1, neg(mul(x, g)));
      },
      [](const TangentContext<T>& c) {
        const Tensor<T>& x = c.input(0);
        const Tensor<T> dx = c.has_tangent(0) ? mul(sub(sigmoid(x), c.input(1)), c.tangent(0)) : Tensor<T>();
        const Tensor<T> dy = c.has_tangent(1) ? neg(mul(x, c.tangent(1))) : Tensor<T>();
        return detail::add_terms(dx, dy, x.shape());
      });
}

}  // namespace metagrad
