// SPDX-License-Identifier: MIT
// SMaT's parameterized attention explainer (Fernandes et al. 2022): the attention explainer with
// head weights λ = sparsemax(φ) over all heads of all layers, φ learned. sparsemax (not softmax)
// lets the meta-learner switch heads off entirely. φ starts uniform at 1/(L·H), so λ starts as
// the all-heads average.
#pragma once
#include <cstdint>
#include <vector>

#include "metagrad/explain/attention.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/ops/sparsemax.hpp"

namespace metagrad {

template <Floating T>
class LearnedAttentionExplainer final : public nn::Module<T> {
 public:
  LearnedAttentionExplainer(std::int64_t layers, std::int64_t heads, double temperature = 1.0)
      : temperature_(temperature) {
    check(layers > 0 && heads > 0 && temperature > 0, "LearnedAttentionExplainer",
          "needs positive layers, heads and temperature, got ", layers, ", ", heads, " and ", temperature);
    head_logits = full<T>(Shape{layers * heads}, T(1) / static_cast<T>(layers * heads));
    this->register_parameter("head_logits", head_logits);
  }

  /// λ = sparsemax(φ): [L·H], on the simplex, possibly with exact zeros.
  Tensor<T> head_weights() const { return sparsemax(head_logits, 0); }

  /// The token distribution [B, S] from a Transformer output's attention logits.
  Tensor<T> forward(const std::vector<Tensor<T>>& attention_logits, const Tensor<T>& mask = {}) const {
    const auto scores = head_scores(attention_logits, mask);
    check(scores.size(1) == head_logits.size(0), "LearnedAttentionExplainer", "built for ", head_logits.size(0),
          " heads, got attention logits of ", attention_logits.size(), " layers ", attention_logits[0].shape());
    return attention_explanation(scores, head_weights(), mask, static_cast<T>(temperature_));
  }
  Tensor<T> operator()(const std::vector<Tensor<T>>& attention_logits, const Tensor<T>& mask = {}) const {
    return forward(attention_logits, mask);
  }

  /// The logits [B, S] whose softmax forward() returns, from head_scores [B, L·H, S] (which a fixed
  /// model's caller may compute once and reuse while φ changes).
  Tensor<T> explanation_logits(const Tensor<T>& scores, const Tensor<T>& mask = {}) const {
    check(scores.dim() == 3 && scores.size(1) == head_logits.size(0), "LearnedAttentionExplainer", "built for ",
          head_logits.size(0), " heads, got head scores ", scores.shape());
    return attention_explanation_logits(scores, head_weights(), mask, static_cast<T>(temperature_));
  }

  Tensor<T> head_logits;  // φ [L·H]

 private:
  double temperature_;
};

}  // namespace metagrad
