// SPDX-License-Identifier: MIT
// SMaT's static explainers, as explanation logits over tokens [B, S] (padding at -1e9; the
// explanation is their softmax), with the temperatures and β of the authors' tapes: attention of
// all heads at equal weight and of the last layer only (β 5); the gradient norm ‖∂ŷ/∂e_t‖₂ (whose
// temperature the authors never apply), gradient × input ⟨∂ŷ/∂e_t, e_t⟩ / 0.1 and integrated
// gradients (10 steps, zero baseline, summed over the embedding) / 0.5 (β 0.2). Gradients are of
// the predicted class's logit w.r.t. the input embeddings. The attention and gradient parts take
// any model (head scores; embeddings and a function of them), so a ViT's patches serve as a text
// Transformer's tokens do; the TransformerEncoder overloads wire the text model in.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "metagrad/explain/attention.hpp"
#include "metagrad/explain/explainer.hpp"
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
/// Tokens per batch of integrated gradients' path points (see gradient_explainer_scores).
inline constexpr std::int64_t kIntegratedGradientTokens = 32768;

namespace detail {
/// scores / temperature with -1e9 at padding.
template <Floating T>
Tensor<T> masked_explanation_logits(const Tensor<T>& scores, const Tensor<T>& mask, double temperature) {
  auto z = mul(scores, static_cast<T>(1.0 / temperature));
  return mask.defined() ? add(z, mul(sub(mask.detach(), T(1)), T(1e9))) : z;
}
}  // namespace detail

/// attention_all / attention_last from head scores [B, L·H, S] (head_scores(): layer-major): the
/// mean over all heads, or over the last layer's `heads_per_layer` heads.
template <Floating T>
Tensor<T> attention_explainer_scores(StaticExplainer explainer, const Tensor<T>& head_scores,
                                     std::int64_t heads_per_layer) {
  const char* op = "attention_explainer_scores";
  check(is_attention(explainer), op, explainer_name(explainer), " is not an attention explainer");
  check(head_scores.dim() == 3 && heads_per_layer > 0 && head_scores.size(1) % heads_per_layer == 0, op,
        "head scores ", head_scores.shape(), " are not [B, L·H, S] with H = ", heads_per_layer);
  const auto used = explainer == StaticExplainer::attention_last
                        ? narrow(head_scores, 1, head_scores.size(1) - heads_per_layer, heads_per_layer)
                        : head_scores;
  return div(sum(used, {1}), static_cast<T>(used.size(1))).detach();
}

/// gradient_norm / gradient_x_input / integrated_gradients from the input embeddings [B, S, d] of
/// any model, `logits_of(e)` mapping embeddings [M, S, d] (M a multiple of B: integrated gradients
/// sends its path points as one batch) to logits [M, C]; for the predicted classes, as constants
/// [B, S].
template <Floating T, class LogitsOf>
Tensor<T> gradient_explainer_scores(StaticExplainer explainer, const Tensor<T>& embeddings, LogitsOf&& logits_of) {
  const char* op = "gradient_explainer_scores";
  check(!is_attention(explainer), op, explainer_name(explainer), " is not a gradient explainer");
  check(embeddings.dim() == 3 && embeddings.size(0) > 0, op, "embeddings ", embeddings.shape(),
        " are not [B, S, d] with B > 0");
  const auto e = embeddings.detach();
  const auto target = metagrad::detail::resolve_target<T>(logits_of, e, {}, op);
  if (explainer == StaticExplainer::integrated_gradients) {
    // Path points go through the model in batches of at most ~32k tokens: a Transformer's attention
    // holds B·H·S² values per layer, and 64 emails × 10 steps × 256 tokens in one batch took 10 GB.
    const std::int64_t max_rows = std::max<std::int64_t>(1, kIntegratedGradientTokens / std::max<std::int64_t>(1, e.size(1)));
    const IntegratedGradients ig{.steps = kIntegratedGradientSteps, .max_batch = max_rows, .baseline_value = 0.0};
    return sum(ig(logits_of, e, target), {2}).detach();
  }
  const auto g = metagrad::detail::input_gradient<T>(logits_of, e, target, {}, op);
  if (explainer == StaticExplainer::gradient_norm) return norm(g, 2, {2}).detach();
  return sum(mul(g, e), {2}).detach();
}

/// The explanation logits [B, S] of `explainer` from its raw scores: scores / temperature, -1e9 at
/// padding (mask [B, S] 1 at tokens; undefined: none).
template <Floating T>
Tensor<T> static_explanation_logits(StaticExplainer explainer, const Tensor<T>& scores, const Tensor<T>& mask = {}) {
  return detail::masked_explanation_logits(scores, mask, explainer_temperature(explainer));
}

/// The raw per-token scores [B, S] of `explainer` for a text Transformer's predicted classes
/// (before the temperature and the padding bias), as constants. Gradients are w.r.t. the token
/// embeddings.
template <Floating T>
Tensor<T> static_explainer_scores(StaticExplainer explainer, nn::TransformerEncoder<T>& model, const IndexTensor& ids,
                                  const Tensor<T>& mask) {
  const char* op = "static_explainer_scores";
  check(ids.dim() == 2 && (!mask.defined() || mask.shape() == ids.shape()), op, "ids ", ids.shape(), " and mask ",
        mask.defined() ? mask.shape().str() : std::string("undefined"), " must both be [B, S]");
  if (is_attention(explainer)) {
    NoGradGuard no_grad;
    return attention_explainer_scores(explainer, head_scores(model.forward(ids, mask).attention_logits, mask),
                                      model.config().num_heads);
  }
  check(model.tok != nullptr, op, "the model has no token embedding (vocab_size 0)");
  Tensor<T> embeddings;
  {
    NoGradGuard no_grad;
    embeddings = model.tok->forward(ids);
  }
  // Integrated gradients' path points of all examples go through the model as one batch, so the
  // mask is tiled to match.
  const std::int64_t n = ids.size(0);
  auto logits_of = [&](const Tensor<T>& e) {
    const auto tiled = mask.defined() && e.size(0) != n ? repeat(mask, {e.size(0) / n, 1}) : mask;
    return model.forward_embeddings(e, tiled).logits;
  };
  return gradient_explainer_scores(explainer, embeddings, logits_of);
}

/// The explanation logits [B, S] of `explainer` for a text Transformer: scores / temperature, -1e9
/// at padding.
template <Floating T>
Tensor<T> static_explanation_logits(StaticExplainer explainer, nn::TransformerEncoder<T>& model,
                                    const IndexTensor& ids, const Tensor<T>& mask) {
  return static_explanation_logits(explainer, static_explainer_scores(explainer, model, ids, mask), mask);
}

}  // namespace metagrad::learn
