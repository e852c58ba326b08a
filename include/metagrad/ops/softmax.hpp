// SPDX-License-Identifier: MIT
// softmax and log_softmax along a dim. The forward passes are fused, stable kernels
// (backend/softmax.hpp). Each backward pass is one fused kernel too, wrapped as an op of
// (g, y) -- softmax_backward, log_softmax_backward -- whose own rule is written in ops, so the
// first order costs one pass over the data and every higher order still works.
#pragma once
#include "metagrad/backend/softmax.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad {

namespace detail {

/// The fused rules read g and y in step, slice by slice: a mismatch would read out of bounds.
template <Floating T>
int check_backward_args(const Tensor<T>& g, const Tensor<T>& y, int dim, const char* op) {
  check(g.shape() == y.shape(), op, "gradient of shape ", g.shape(), " does not match the output's shape ", y.shape());
  return normalize_dim(dim, y.dim(), op);
}

/// The vjp of softmax at its output y: y * (g - Σ_dim g*y).
template <Floating T>
Tensor<T> softmax_backward(const Tensor<T>& g, const Tensor<T>& y, int dim) {
  dim = check_backward_args(g, y, dim, "softmax_backward");
  return record("softmax_backward", backend::softmax_backward(g, y, dim), {g, y},
                [dim](const Tensor<T>& u, BackwardContext<T>& c) {
                  const auto& g = c.input(0);
                  const auto& y = c.input(1);
                  // Linear in g with a symmetric Jacobian, so its vjp in g is itself at (u, y).
                  if (c.wants(0)) c.set(0, softmax_backward(u, y, dim));
                  // In y: u * (g - Σ g*y) - g * Σ u*y.
                  if (c.wants(1))
                    c.set(1, sub(mul(u, sub(g, sum(mul(g, y), {dim}, true))), mul(g, sum(mul(u, y), {dim}, true))));
                },
                [dim](const TangentContext<T>& c) {
                  const auto &g = c.input(0), &y = c.input(1);
                  // Linear in g; in y: dy * (g - Σ g*y) - y * Σ g*dy.
                  const Tensor<T> dg = c.has_tangent(0) ? softmax_backward(c.tangent(0), y, dim) : Tensor<T>();
                  Tensor<T> dy;
                  if (c.has_tangent(1)) {
                    const auto& t = c.tangent(1);
                    dy = sub(mul(t, sub(g, sum(mul(g, y), {dim}, true))), mul(y, sum(mul(g, t), {dim}, true)));
                  }
                  return add_terms(dg, dy, c.output_shape());
                });
}

/// The vjp of log_softmax at its output y: g - exp(y) * Σ_dim g.
template <Floating T>
Tensor<T> log_softmax_backward(const Tensor<T>& g, const Tensor<T>& y, int dim) {
  dim = check_backward_args(g, y, dim, "log_softmax_backward");
  return record("log_softmax_backward", backend::log_softmax_backward(g, y, dim), {g, y},
                [dim](const Tensor<T>& u, BackwardContext<T>& c) {
                  const Tensor<T> p = exp(c.input(1));
                  // In g: u - Σ u*p; in y: -u * p * Σ g.
                  if (c.wants(0)) c.set(0, sub(u, sum(mul(u, p), {dim}, true)));
                  if (c.wants(1)) c.set(1, neg(mul(mul(u, p), sum(c.input(0), {dim}, true))));
                },
                [dim](const TangentContext<T>& c) {
                  // Linear in g (the op itself at dg); in y: -p * dy * Σ g.
                  const Tensor<T> dg = c.has_tangent(0) ? log_softmax_backward(c.tangent(0), c.input(1), dim) : Tensor<T>();
                  Tensor<T> dy;
                  if (c.has_tangent(1))
                    dy = neg(mul(mul(c.tangent(1), exp(c.input(1))), sum(c.input(0), {dim}, true)));
                  return add_terms(dg, dy, c.output_shape());
                });
}

}  // namespace detail

/// exp(x) / Σ exp(x) along `dim` (negative counts from the end).
template <Floating T>
Tensor<T> softmax(const Tensor<T>& x, std::int64_t dim) {
  const int d = normalize_dim(dim, x.dim(), "softmax");
  return record("softmax", backend::softmax(x, d), {x},
                [d](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, detail::softmax_backward(g, c.output(), d)); },
                // The Jacobian is symmetric, so J dx is the vjp at dx.
                [d](const TangentContext<T>& c) { return detail::softmax_backward(c.tangent(0), c.output(), d); });
}

/// softmax(x + bias) along `dim`, bias broadcast to x's shape without changing it (attention's
/// padding mask [B, 1, 1, S] on its logits [B, H, S, S]). Along the last dim it is one fused pass,
/// and either way the graph keeps x, the small bias and the output, never the sum.
template <Floating T>
Tensor<T> softmax_with_bias(const Tensor<T>& x, const Tensor<T>& bias, std::int64_t dim) {
  const int d = normalize_dim(dim, x.dim(), "softmax_with_bias");
  check(broadcast_shapes(x.shape(), bias.shape(), "softmax_with_bias") == x.shape(), "softmax_with_bias", "bias of shape ",
        bias.shape(), " does not broadcast to the input's shape ", x.shape());
  auto y = x.dim() > 0 && d == x.dim() - 1 ? backend::softmax_last_with_bias(x, bias)
                                           : backend::softmax(backend::add(x, bias, x.shape()), d);
  return record("softmax_with_bias", std::move(y), {x, bias},
                [d](const Tensor<T>& g, BackwardContext<T>& c) {
                  const auto gx = detail::softmax_backward(g, c.output(), d);
                  if (c.wants(1)) c.set(1, sum_to(gx, c.input(1).shape()));
                  if (c.wants(0)) c.set(0, gx);
                },
                // The Jacobian in x + bias is symmetric, as for softmax.
                [d](const TangentContext<T>& c) {
                  return detail::softmax_backward(detail::add_terms(c.tangent(0), c.tangent(1), c.output_shape()),
                                                  c.output(), d);
                });
}

/// x - log Σ exp(x) along `dim`, without forming softmax (exact for very negative outputs).
template <Floating T>
Tensor<T> log_softmax(const Tensor<T>& x, std::int64_t dim) {
  const int d = normalize_dim(dim, x.dim(), "log_softmax");
  return record("log_softmax", backend::log_softmax(x, d), {x},
                [d](const Tensor<T>& g, BackwardContext<T>& c) {
                  c.set(0, detail::log_softmax_backward(g, c.output(), d));
                },
                [d](const TangentContext<T>& c) {
                  // J = I - 1 pᵀ is not symmetric: J dx = dx - Σ p dx.
                  const auto& dx = c.tangent(0);
                  return sub(dx, sum(mul(exp(c.output()), dx), {d}, true));
                });
}

}  // namespace metagrad
