// SPDX-License-Identifier: MIT
// Saliency explainers: the input gradient of the target logit (Simonyan et al.), and gradient ×
// input, which for a linear model is exactly each feature's contribution w_i·x_i to the logit.
#pragma once
#include "metagrad/explain/explainer.hpp"
#include "metagrad/ops/arithmetic.hpp"

namespace metagrad {

/// ∂ logit_target / ∂x.
struct Gradient {
  template <Floating T, Model<T> M>
  Tensor<T> operator()(M& model, const Tensor<T>& x, const IndexTensor& target = {},
                       const ExplainOptions& options = {}) const {
    const auto y = detail::resolve_target(model, x, target, "Gradient");
    return detail::input_gradient(model, x, y, options, "Gradient");
  }
};

/// x ⊙ ∂ logit_target / ∂x.
struct GradientTimesInput {
  template <Floating T, Model<T> M>
  Tensor<T> operator()(M& model, const Tensor<T>& x, const IndexTensor& target = {},
                       const ExplainOptions& options = {}) const {
    const auto y = detail::resolve_target(model, x, target, "GradientTimesInput");
    return mul(detail::input_gradient(model, x, y, options, "GradientTimesInput"), x);
  }
};

}  // namespace metagrad
