// SPDX-License-Identifier: MIT
// sparsemax along a dim: like softmax it maps scores to a probability vector, but it can put
// exactly zero weight on low scores. SMaT weights its attention heads with it. The Jacobian at
// output p is diag(s) − s·sᵀ/|S| with s = [p > 0] the support, so the vjp is s ⊙ (g − Σ g·s / Σ s).
// s is piecewise constant in the input, hence the rule (linear in g, written in ops with s held
// constant) also gives every higher derivative: zero away from the support's boundaries.
#pragma once
#include "metagrad/backend/sparsemax.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/compare.hpp"
#include "metagrad/ops/reduction.hpp"

namespace metagrad {

namespace detail {
/// The vjp of sparsemax for the support indicator s (a constant): s ⊙ (g − Σ_dim g·s / Σ_dim s).
template <Floating T>
Tensor<T> sparsemax_vjp(const Tensor<T>& g, const Tensor<T>& support, int dim) {
  const auto gs = mul(g, support);
  return mul(support, sub(g, div(sum(gs, {dim}, true), sum(support, {dim}, true))));
}
}  // namespace detail

/// The projection of x onto the probability simplex along `dim` (negative counts from the end).
template <Floating T>
Tensor<T> sparsemax(const Tensor<T>& x, std::int64_t dim) {
  check(x.dim() >= 1, "sparsemax", "needs a tensor of rank >= 1, got ", x.shape());
  const int d = normalize_dim(dim, x.dim(), "sparsemax");
  check(x.size(d) > 0, "sparsemax", "dim ", d, " of ", x.shape(), " is empty");
  auto out = Tensor<T>::empty(x.shape());
  backend::sparsemax(x, d, out);
  return record("sparsemax", std::move(out), {x}, [d](const Tensor<T>& g, BackwardContext<T>& c) {
    c.set(0, detail::sparsemax_vjp(g, gt(c.output().detach(), T(0)), d));
  }, [d](const TangentContext<T>& c) {
    // The Jacobian is symmetric, so J dx is the vjp at dx.
    return detail::sparsemax_vjp(c.tangent(0), gt(c.output().detach(), T(0)), d);
  });
}

}  // namespace metagrad
