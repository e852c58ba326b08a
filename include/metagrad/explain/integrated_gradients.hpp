// SPDX-License-Identifier: MIT
// Integrated gradients (Sundararajan et al. 2017): (x − b) ⊙ ∫₀¹ ∇f(b + α(x − b)) dα, with the
// integral taken by the midpoint rule on `steps` points (error O(1/steps²) for a smooth f, where
// the left Riemann sum is only O(1/steps)). The path points of all examples go through the model
// as one batch, cut into chunks of at most max_batch rows, so memory stays bounded however many
// steps are asked for (the captum out-of-memory reports).
#pragma once
#include <algorithm>
#include <cstdint>

#include "metagrad/core/creation.hpp"
#include "metagrad/explain/explainer.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/shape.hpp"

namespace metagrad {

struct IntegratedGradients {
  std::int64_t steps = 32;
  /// Rows (path points × examples) per model call.
  std::int64_t max_batch = 256;
  /// The baseline is this constant, unless a baseline tensor is given to the call.
  double baseline_value = 0.0;

  template <Floating T, Model<T> M>
  Tensor<T> operator()(M& model, const Tensor<T>& x, const IndexTensor& target = {},
                       const ExplainOptions& options = {}) const {
    return (*this)(model, x, target, full_like(x, static_cast<T>(baseline_value)), options);
  }

  /// With an explicit baseline (broadcastable to x).
  template <Floating T, Model<T> M>
  Tensor<T> operator()(M& model, const Tensor<T>& x, const IndexTensor& target, const Tensor<T>& baseline,
                       const ExplainOptions& options = {}) const {
    const char* op = "IntegratedGradients";
    check(steps >= 1 && max_batch >= 1, op, "needs steps >= 1 and max_batch >= 1, got ", steps, " and ", max_batch);
    const auto y = detail::resolve_target(model, x, target, op);
    const std::int64_t n = x.size(0);
    const Tensor<T> base = broadcast_to(baseline.detach(), x.shape());
    const Tensor<T> delta = sub(x.detach(), base);
    // Path rows are [chunk, N, ...] flattened to [chunk·N, ...]; targets repeat per step.
    auto with_leading = [&](std::initializer_list<std::int64_t> lead) {
      Shape s(lead);
      for (int d = 1; d < x.dim(); ++d) s.push_back(x.size(d));
      return s;
    };
    const std::int64_t per_call = std::clamp<std::int64_t>(max_batch / n, 1, steps);
    Tensor<T> total;
    for (std::int64_t s0 = 0; s0 < steps; s0 += per_call) {
      const std::int64_t k = std::min(per_call, steps - s0);
      Shape alpha_shape{k};
      for (int d = 0; d < x.dim(); ++d) alpha_shape.push_back(1);
      const auto alphas = reshape(
          add(arange<T>(static_cast<T>(s0), static_cast<T>(s0 + k)), T(0.5)) * (T(1) / static_cast<T>(steps)),
          alpha_shape);
      const auto points = reshape(add(unsqueeze(base, 0), mul(alphas, unsqueeze(delta, 0))), with_leading({k * n}));
      const auto targets = reshape(repeat(reshape(y, Shape{1, n}), {k, 1}), Shape{k * n});
      const auto g = detail::input_gradient(model, points, targets, options, op);
      const auto summed = sum(reshape(g, with_leading({k, n})), {0});
      total = total.defined() ? add(total, summed) : summed;
    }
    // (x − b) carries x's own graph when x requires grad.
    return mul(sub(x, base), total * (T(1) / static_cast<T>(steps)));
  }
};

}  // namespace metagrad
