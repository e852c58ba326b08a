// SPDX-License-Identifier: MIT
// The element-wise binary and ternary CPU kernels, each named by what it computes: arithmetic,
// comparisons and where with NumPy broadcasting, the fused first-order backward kernels of the
// activations, and the terms of the pointwise losses. Reached through backend/binary.hpp,
// backend/compare.hpp and backend/loss.hpp.
#pragma once
#include "metagrad/backend/cpu/elementwise.hpp"
#include "metagrad/backend/cpu/reduce.hpp"

namespace metagrad::cpu {

using backend::PointwiseLoss;

// ---- arithmetic, broadcast to out ----
template <Floating T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return map_binary(a, b, out, [](const auto& x, const auto& y) { return x + y; });
}
template <Floating T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return map_binary(a, b, out, [](const auto& x, const auto& y) { return x - y; });
}
template <Floating T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return map_binary(a, b, out, [](const auto& x, const auto& y) { return x * y; });
}
template <Floating T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return map_binary(a, b, out, [](const auto& x, const auto& y) { return x / y; });
}
/// (a - b)²
template <Floating T>
Tensor<T> squared_difference(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return map_binary(a, b, out, [](const auto& x, const auto& y) { return (x - y).square(); });
}
/// Eigen's sign(a - b): 0 where a == b.
template <Floating T>
Tensor<T> sign_of_difference(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return map_binary(a, b, out, [](const auto& x, const auto& y) { return (x - y).sign(); });
}
/// max(a, b), NaN where either is NaN.
template <Floating T>
Tensor<T> maximum(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return map_binary(a, b, out, [](const auto& x, const auto& y) { return nan_max(x, y); });
}
template <Floating T>
Tensor<T> minimum(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return map_binary(a, b, out, [](const auto& x, const auto& y) { return nan_min(x, y); });
}
template <Floating T>
Tensor<T> pow(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return map_binary(a, b, out, [](const auto& x, const auto& y) { return x.pow(y); });
}
/// maximum's (Loses = lt) or minimum's (Loses = gt) share of the gradient for x against y:
/// 1 where x wins, 0.5 at a tie, 0 where x loses, 1 where one is NaN.
template <Compare Loses, Floating T>
Tensor<T> extremum_share(const Tensor<T>& x, const Tensor<T>& y, const Shape& out) {
  return map_binary(x, y, out, [](const auto& xv, const auto& yv) {
    return (T(1) - compare<Loses>(xv, yv)) - T(0.5) * compare<Compare::eq>(xv, yv);
  });
}
/// 1 where a == 0 and b >= 0 (where pow's exponent gradient is taken as 0), else 0.
template <Floating T>
Tensor<T> pow_zero_base(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return map_binary(a, b, out, [](const auto& x, const auto& y) {
    return compare<Compare::eq>(x, T(0)) * compare<Compare::ge>(y, T(0));
  });
}

// ---- comparisons and selection ----
/// The 0/1 mask of a C b, broadcast to out.
template <Compare C, Element T>
Tensor<T> compare_mask(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return map_binary(a, b, out, [](const auto& x, const auto& y) { return compare<C>(x, y); });
}
/// cond != 0 ? a : b, broadcast to out.
template <Floating T>
Tensor<T> where(const Tensor<T>& cond, const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return map_ternary(cond, a, b, out, [](const auto& m, const auto& x, const auto& y) { return select(m, x, y); });
}

// ---- fused first-order backward kernels (operands of one shape) ----
/// g * (x > 0)
template <Floating T>
Tensor<T> relu_backward(const Tensor<T>& g, const Tensor<T>& x) {
  return map_binary_same_shape(g, x, [](const auto& gv, const auto& xv) {
    return select(compare<Compare::gt>(xv, T(0)), gv, T(0));
  });
}
/// g * (1 - y²)
template <Floating T>
Tensor<T> tanh_backward(const Tensor<T>& g, const Tensor<T>& y) {
  return map_binary_same_shape(g, y, [](const auto& gv, const auto& yv) { return gv * (T(1) - yv * yv); });
}
/// g * y * (1 - y)
template <Floating T>
Tensor<T> sigmoid_backward(const Tensor<T>& g, const Tensor<T>& y) {
  return map_binary_same_shape(g, y, [](const auto& gv, const auto& yv) { return gv * (yv * (T(1) - yv)); });
}
/// g * sigmoid(beta x) where beta x <= threshold, else g.
template <Floating T>
Tensor<T> softplus_backward(const Tensor<T>& g, const Tensor<T>& x, T beta, T threshold) {
  return map_binary_same_shape(g, x, [beta, threshold](const auto& gv, const auto& xv) {
    const auto z = xv * beta;
    return select(compare<Compare::gt>(z, threshold), gv, gv / (T(1) + (-z).exp()));
  });
}
/// g * gelu'(x), exact or of the tanh approximation.
template <Floating T>
Tensor<T> gelu_backward(const Tensor<T>& g, const Tensor<T>& x, bool tanh_approximation) {
  return tanh_approximation
             ? map_binary_same_shape(g, x, [](const auto& gv, const auto& xv) { return gv * gelu_tanh_grad(xv); })
             : map_binary_same_shape(g, x, [](const auto& gv, const auto& xv) { return gv * gelu_grad(xv); });
}

// ---- contextual decomposition's bias split ----
/// b·(|x| + eps)/(|x| + |y| + 2 eps), b broadcast to x's shape. The operations are those of the
/// composed ops in their order, so the result is theirs bit for bit.
template <Floating T>
Tensor<T> bias_share(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& b, T eps) {
  return map_ternary(x, y, b, x.shape(), [eps](const auto& xv, const auto& yv, const auto& bv) {
    return bv * ((xv.abs() + eps) / ((xv.abs() + yv.abs()) + T(2) * eps));
  });
}
/// h·sign(x)(|y| + eps)/(|x| + |y| + 2 eps)², operands of one shape. sign(x) as two packet
/// compares: Eigen 3.4's sign() is a scalar call per element.
template <Floating T>
Tensor<T> bias_share_backward(const Tensor<T>& h, const Tensor<T>& x, const Tensor<T>& y, T eps) {
  return map_ternary(h, x, y, x.shape(), [eps](const auto& hv, const auto& xv, const auto& yv) {
    const auto d = (xv.abs() + yv.abs()) + T(2) * eps;
    const auto sign_x = compare<Compare::gt>(xv, T(0)) - compare<Compare::lt>(xv, T(0));
    return hv * sign_x * (yv.abs() + eps) / (d * d);
  });
}

// ---- pointwise losses ----
namespace detail {
/// The element-wise term of loss K as a functor over Eigen array expressions.
template <PointwiseLoss K, class T>
auto loss_term() {
  if constexpr (K == PointwiseLoss::mse) return [](const auto& x, const auto& y) { return (x - y).square(); };
  else if constexpr (K == PointwiseLoss::l1) return [](const auto& x, const auto& y) { return (x - y).abs(); };
  else if constexpr (K == PointwiseLoss::kl_div)
    return [](const auto& x, const auto& t) { return (t == T(0)).select(T(0), t * (t.log() - x)); };
  else return [](const auto& x, const auto& y) { return x.max(T(0)) - x * y + (-x.abs()).exp().log1p(); };
}
}  // namespace detail

/// The per-element terms of pointwise loss K of input and target (one shape).
template <PointwiseLoss K, Floating T>
Tensor<T> pointwise_loss(const Tensor<T>& input, const Tensor<T>& target) {
  return map_binary(input, target, input.shape(), detail::loss_term<K, T>());
}
/// The sum of those terms, without forming them.
template <PointwiseLoss K, Floating T>
T pointwise_loss_sum(const Tensor<T>& input, const Tensor<T>& target) {
  return sum_binary(input, target, detail::loss_term<K, T>());
}

}  // namespace metagrad::cpu
