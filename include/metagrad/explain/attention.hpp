// SPDX-License-Identifier: MIT
// Attention explainers over tokens, read from a Transformer's exposed attention logits (SMaT's
// static baselines and the input of its learned explainer). Each head's [S, S] logits are
// averaged over the unpadded query rows, giving one score per key token; the heads are weighted,
// summed, divided by a temperature and turned into a distribution over the tokens with a softmax
// in which padding gets exactly zero weight.
#pragma once
#include <cstdint>
#include <vector>

#include "metagrad/core/creation.hpp"
#include "metagrad/nn/transformer.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/softmax.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad {

/// Per head, the mean over unpadded query rows of the attention logits: [B, L·H, S], layer-major
/// (head h of layer l at l·H + h). mask [B, S] is 1 at tokens and 0 at padding (undefined: none).
template <Floating T>
Tensor<T> head_scores(const std::vector<Tensor<T>>& attention_logits, const Tensor<T>& mask = {}) {
  const char* op = "head_scores";
  check(!attention_logits.empty(), op, "needs the attention logits of at least one layer");
  const Shape& s0 = attention_logits[0].shape();
  check(s0.rank() == 4 && s0[2] == s0[3], op, "attention logits must be [B, H, S, S], got ", s0);
  const std::int64_t b = s0[0], s = s0[2];
  std::vector<Tensor<T>> per_layer;
  for (const auto& l : attention_logits) {
    check(l.shape() == s0, op, "layers' attention logits differ in shape: ", l.shape(), " vs ", s0);
    if (!mask.defined()) {
      per_layer.push_back(mean(l, {2}));
      continue;
    }
    check(mask.shape() == Shape{b, s}, op, "mask ", mask.shape(), " does not match attention logits ", s0);
    const auto m = reshape(mask.detach(), Shape{b, 1, s, 1});
    per_layer.push_back(div(sum(mul(l, m), {2}), sum(m, {2})));
  }
  return per_layer.size() == 1 ? per_layer[0] : concat(per_layer, 1);
}

/// Σ_k w_k · scores[b, k, t] / temperature with -1e9 added at padding: [B, S], the logits whose
/// softmax is attention_explanation. A KL against them is taken from their log_softmax, which
/// stays finite at padding where the log of the explanation itself would be -inf.
/// scores [B, K, S] from head_scores; weights [K].
template <Floating T>
Tensor<T> attention_explanation_logits(const Tensor<T>& scores, const Tensor<T>& weights, const Tensor<T>& mask = {},
                                       std::type_identity_t<T> temperature = T(1)) {
  const char* op = "attention_explanation";
  check(scores.dim() == 3 && weights.dim() == 1 && weights.size(0) == scores.size(1), op, "scores ", scores.shape(),
        " and head weights ", weights.shape(), " do not match");
  check(temperature > 0, op, "temperature must be positive, got ", temperature);
  auto z = mul(sum(mul(scores, reshape(weights, Shape{1, weights.size(0), 1})), {1}), T(T(1) / temperature));
  if (mask.defined()) {
    check(mask.shape() == Shape{scores.size(0), scores.size(2)}, op, "mask ", mask.shape(), " does not match scores ",
          scores.shape());
    z = add(z, mul(sub(mask.detach(), T(1)), T(1e9)));
  }
  return z;
}

/// softmax_t(Σ_k w_k · scores[b, k, t] / temperature), padding at exactly zero: [B, S].
template <Floating T>
Tensor<T> attention_explanation(const Tensor<T>& scores, const Tensor<T>& weights, const Tensor<T>& mask = {},
                                std::type_identity_t<T> temperature = T(1)) {
  return softmax(attention_explanation_logits(scores, weights, mask, temperature), 1);
}

/// The static attention explainer: all heads of all layers at equal weight, or only the last
/// layer's heads (SMaT's "BestLayer" baseline).
struct AttentionExplainer {
  bool last_layer_only = false;
  double temperature = 1.0;

  /// The token distribution [B, S] from a Transformer output's attention logits.
  template <Floating T>
  Tensor<T> operator()(const std::vector<Tensor<T>>& attention_logits, const Tensor<T>& mask = {}) const {
    check(!attention_logits.empty(), "AttentionExplainer", "needs the attention logits of at least one layer");
    const std::vector<Tensor<T>> used =
        last_layer_only ? std::vector<Tensor<T>>{attention_logits.back()} : attention_logits;
    const auto scores = head_scores(used, mask);
    const auto k = scores.size(1);
    return attention_explanation(scores, full<T>(Shape{k}, T(1) / static_cast<T>(k)), mask, static_cast<T>(temperature));
  }

  template <Floating T>
  Tensor<T> operator()(nn::TransformerEncoder<T>& model, const IndexTensor& tokens, const Tensor<T>& mask = {}) const {
    return (*this)(model.forward(tokens, mask).attention_logits, mask);
  }
};

}  // namespace metagrad
