// SPDX-License-Identifier: MIT
// Gradient clipping. In place, on the .grad() of parameters (before an optimizer step):
// clip_grad_norm_ scales all gradients together so their global norm is at most max_norm, and
// clip_grad_value_ clamps each gradient value into [-clip_value, clip_value]. As functions of
// gradient tensors (for the differentiable optimizers): clip_grad_norm returns scaled copies, built
// from ops when the gradients carry a graph so that hypergradients flow through the clipping.
#pragma once
#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/backend/optim.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad {

namespace detail {
inline constexpr double kClipEpsilon = 1e-6;  // PyTorch's: max_norm / (norm + 1e-6)

/// The norm_type-norm of all the tensors together (undefined ones skipped), accumulated in double.
template <Floating T>
double global_norm(std::span<const Tensor<T>> tensors, double norm_type, const char* op) {
  check(norm_type > 0, op, "norm_type ", norm_type, " must be > 0 (or infinity)");
  if (std::isinf(norm_type)) {
    double m = 0;
    for (const auto& t : tensors)
      if (t.defined()) {
        const double a = backend::max_abs(t);
        if (std::isnan(a)) return a;
        m = std::max(m, a);
      }
    return m;
  }
  double total = 0;
  for (const auto& t : tensors) {
    if (!t.defined()) continue;
    if (norm_type == 2) {
      total += backend::sum_of_squares(t);
    } else {
      const T* x = t.data();
      for (std::int64_t i = 0; i < t.numel(); ++i) total += std::pow(std::abs(static_cast<double>(x[i])), norm_type);
    }
  }
  return norm_type == 2 ? std::sqrt(total) : std::pow(total, 1.0 / norm_type);
}

/// The factor the gradients are multiplied by: min(1, max_norm / (norm + 1e-6)), NaN for a NaN norm.
inline double clip_coefficient(double norm, double max_norm) {
  const double c = max_norm / (norm + kClipEpsilon);
  return c > 1.0 ? 1.0 : c;
}

inline void check_max_norm(double max_norm, const char* op) {
  check(max_norm >= 0 && !std::isnan(max_norm), op, "max_norm ", max_norm, " must be >= 0");
}
}  // namespace detail

/// Scales the gradients of `params` in place so that their global norm_type-norm is at most
/// max_norm, and returns the norm they had. A non-finite norm is an error with
/// error_if_nonfinite, else (as in PyTorch) the gradients are scaled by the resulting NaN factor.
template <Floating T>
double clip_grad_norm_(const std::vector<Tensor<T>>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false) {
  detail::check_max_norm(max_norm, "clip_grad_norm_");
  std::vector<Tensor<T>> grads;
  grads.reserve(params.size());
  for (const auto& p : params) grads.push_back(p.grad());
  const double norm = detail::global_norm<T>(grads, norm_type, "clip_grad_norm_");
  check(!error_if_nonfinite || std::isfinite(norm), "clip_grad_norm_", "the total norm of the gradients is ", norm,
        " (non-finite)");
  const double coefficient = detail::clip_coefficient(norm, max_norm);
  if (!(coefficient < 1.0) && !std::isnan(coefficient)) return norm;  // scaling by 1 changes nothing
  for (auto& g : grads)
    if (g.defined()) backend::scale_(g, static_cast<T>(coefficient));
  return norm;
}

/// Clamps every gradient value of `params` into [-clip_value, clip_value] in place.
template <Floating T>
void clip_grad_value_(const std::vector<Tensor<T>>& params, double clip_value) {
  check(clip_value >= 0 && !std::isnan(clip_value), "clip_grad_value_", "clip_value ", clip_value, " must be >= 0");
  for (const auto& p : params) {
    Tensor<T> g = p.grad();
    if (g.defined()) backend::clamp_(g, static_cast<T>(-clip_value), static_cast<T>(clip_value));
  }
}

/// Gradients scaled so their global L2 norm is at most max_norm (undefined entries stay undefined).
/// When any gradient carries a graph, the norm and the scaling are ops, so the result is
/// differentiable with respect to whatever the gradients depend on. Without a graph the norm is
/// accumulated in double and the result equals what clip_grad_norm_ does in place, bit for bit.
template <Floating T>
std::vector<Tensor<T>> clip_grad_norm(const std::vector<Tensor<T>>& grads, double max_norm) {
  detail::check_max_norm(max_norm, "clip_grad_norm");
  bool graph = false;
  for (const auto& g : grads) graph = graph || g.requires_grad();
  std::vector<Tensor<T>> out = grads;
  if (!graph || !GradMode::enabled()) {
    const double coefficient = detail::clip_coefficient(detail::global_norm<T>(grads, 2.0, "clip_grad_norm"), max_norm);
    if (!(coefficient < 1.0) && !std::isnan(coefficient)) return out;
    for (auto& g : out)
      if (g.defined()) g = mul(g, static_cast<T>(coefficient));
    return out;
  }
  Tensor<T> total;
  for (const auto& g : grads)
    if (g.defined()) total = total.defined() ? add(total, sum(square(g))) : sum(square(g));
  if (!total.defined()) return out;
  const Tensor<T> norm = sqrt(total);
  const double value = static_cast<double>(norm.item());
  if (!(detail::clip_coefficient(value, max_norm) < 1.0) && !std::isnan(value)) return out;
  const Tensor<T> coefficient = div(static_cast<T>(max_norm), add(norm, static_cast<T>(detail::kClipEpsilon)));
  for (auto& g : out)
    if (g.defined()) g = mul(g, coefficient);
  return out;
}

}  // namespace metagrad
