// SPDX-License-Identifier: MIT
// SMaT's static explainers of a Transformer text classifier, as explanation logits over tokens
// [B, S] (padding at -1e9; the explanation is their softmax), with the temperatures and β of the
// authors' tapes: attention of all heads at equal weight and of the last layer only (β 5); the
// gradient norm ‖∂ŷ/∂e_t‖₂ (whose temperature the authors never apply), gradient × input
// ⟨∂ŷ/∂e_t, e_t⟩ / 0.1 and integrated gradients (10 steps, zero baseline, summed over the
// embedding) / 0.5 (β 0.2). Gradients are of the predicted class's logit w.r.t. the input token
// embeddings (explain/embedding_gradient.hpp).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "metagrad/explain/attention.hpp"
#include "metagrad/explain/embedding_gradient.hpp"
#include "metagrad/explain/integrated_gradients.hpp"
#include "metagrad/nn/transformer.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/shape.hpp"

namespace metagrad::learn {

enum class StaticExplainer { attention_all, attention_last, gradient_norm, gradient_x_input, integrated_gradients };

inline constexpr std::array<StaticExplainer, 5> kStaticExplainers{
    StaticExplainer::attention_all, StaticExplainer::attention_last, StaticExplainer::gradient_norm,
    StaticExplainer::gradient_x_input, StaticExplainer::integrated_gradients};

/// The method name results.json uses.
inline std::string explainer_name(StaticExplainer e) {
  switch (e) {
    case StaticExplainer::attention_all: return "attention_all";
    case StaticExplainer::attention_last: return "attention_last";
    case StaticExplainer::gradient_norm: return "gradient_norm";
    case StaticExplainer::gradient_x_input: return "gradient_x_input";
    case StaticExplainer::integrated_gradients: return "integrated_gradients";
  }
  return "unknown";
}

inline StaticExplainer static_explainer_named(std::string_view name) {
  for (auto e : kStaticExplainers)
    if (explainer_name(e) == name) return e;
  fail("static_explainer_named", "no static explainer named '", name,
       "' (have attention_all, attention_last, gradient_norm, gradient_x_input, integrated_gradients)");
}

inline bool is_attention(StaticExplainer e) {
  return e == StaticExplainer::attention_all || e == StaticExplainer::attention_last;
}
/// The divisor of the scores before the softmax (1: none).
inline double explainer_temperature(StaticExplainer e) {
  switch (e) {
    case StaticExplainer::gradient_x_input: return 0.1;
    case StaticExplainer::integrated_gradients: return 0.5;
    default: return 1.0;
  }
}
/// The KL weight the paper trains students with under this explainer.
inline double explainer_beta(StaticExplainer e) { return is_attention(e) ? 5.0 : 0.2; }

inline constexpr std::int64_t kIntegratedGradientSteps = 10;

namespace detail {
/// scores / temperature with -1e9 at padding.
template <Floating T>
Tensor<T> masked_explanation_logits(const Tensor<T>& scores, const Tensor<T>& mask, double temperature) {
  auto z = mul(scores, static_cast<T>(1.0 / temperature));
  return mask.defined() ? add(z, mul(sub(mask.detach(), T(1)), T(1e9))) : z;
}
}  // namespace detail

/// The raw per-token scores [B, S] of `explainer` for `model`'s predicted classes (before the
/// temperature and the padding bias), as constants.
template <Floating T>
Tensor<T> static_explainer_scores(StaticExplainer explainer, nn::TransformerEncoder<T>& model, const IndexTensor& ids,
                                  const Tensor<T>& mask) {
  const char* op = "static_explainer_scores";
  check(ids.dim() == 2 && (!mask.defined() || mask.shape() == ids.shape()), op, "ids ", ids.shape(), " and mask ",
        mask.defined() ? mask.shape().str() : std::string("undefined"), " must both be [B, S]");
  if (is_attention(explainer)) {
    NoGradGuard no_grad;
    const auto logits = model.forward(ids, mask).attention_logits;
    const std::vector<Tensor<T>> used =
        explainer == StaticExplainer::attention_last ? std::vector<Tensor<T>>{logits.back()} : logits;
    const auto scores = head_scores(used, mask);
    return div(sum(scores, {1}), static_cast<T>(scores.size(1)));
  }
  const auto eg = embedding_gradient(model, ids, {}, mask);
  if (explainer == StaticExplainer::gradient_norm) return norm(eg.gradient, 2, {2}).detach();
  if (explainer == StaticExplainer::gradient_x_input) return eg.gradient_times_input().detach();
  // Integrated gradients along the embeddings; the path points of all examples go through the
  // model as one batch, so the mask is tiled to match.
  const std::int64_t n = ids.size(0);
  auto from_embeddings = [&](const Tensor<T>& e) {
    const auto tiled = mask.defined() ? repeat(mask, {e.size(0) / n, 1}) : Tensor<T>();
    return model.forward_embeddings(e, tiled).logits;
  };
  const IntegratedGradients ig{.steps = kIntegratedGradientSteps, .max_batch = 4096, .baseline_value = 0.0};
  return sum(ig(from_embeddings, eg.embeddings, eg.target), {2}).detach();
}

/// The explanation logits [B, S] of `explainer`: scores / temperature, -1e9 at padding.
template <Floating T>
Tensor<T> static_explanation_logits(StaticExplainer explainer, nn::TransformerEncoder<T>& model,
                                    const IndexTensor& ids, const Tensor<T>& mask) {
  return detail::masked_explanation_logits(static_explainer_scores(explainer, model, ids, mask), mask,
                                           explainer_temperature(explainer));
}

}  // namespace metagrad::learn
