// SPDX-License-Identifier: MIT
// The gradient of a Transformer's target logit with respect to its input (token) embeddings, in
// one call: what Captum's LayerGradientXActivation / LayerIntegratedGradients on the embedding
// layer start from, and what SMaT's gradient explainers read. Token ids are not differentiable, so
// the input is the embedding lookup's output; positions are added after it, and since they enter
// by addition the gradient is also the one with respect to token + position embeddings. With
// create_graph the gradient (and the returned embeddings) stay attached to the model's parameters,
// the embedding table included, so a loss on them trains through the explanation.
#pragma once
#include <cstdint>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/explain/explainer.hpp"
#include "metagrad/functional/transforms.hpp"
#include "metagrad/nn/transformer.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/indexing.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad {

template <Floating T>
struct EmbeddingGradient {
  Tensor<T> embeddings;  // [N, L, d]: the token embeddings the model was run on
  Tensor<T> gradient;    // [N, L, d]: ∂ logit[n, target[n]] / ∂ embeddings[n]
  IndexTensor target;    // [N]: the classes explained (the predicted ones when none were given)
  nn::TransformerOutput<T> output;  // the forward pass the gradient was taken of

  /// gradient ⊙ embeddings, summed over the embedding dimension: one score per token [N, L].
  Tensor<T> gradient_times_input() const { return sum(mul(gradient, embeddings), {2}); }
};

/// ∂ logit_target / ∂ (input embeddings) of `model` at `tokens` [N, L]; mask [N, L] is 1 at tokens
/// and 0 at padding (undefined: no padding); target [N] (undefined: the predicted classes).
template <Floating T>
EmbeddingGradient<T> embedding_gradient(nn::TransformerEncoder<T>& model, const IndexTensor& tokens,
                                        const IndexTensor& target = {}, const Tensor<T>& mask = {},
                                        const ExplainOptions& options = {}) {
  const char* op = "embedding_gradient";
  check(model.tok != nullptr, op,
        "the model was built with vocab_size 0 and has no token embedding; differentiate the input of "
        "forward_embeddings instead");
  check(tokens.dim() == 2 && tokens.size(0) > 0, op, "tokens must be [N, L] with N > 0, got ", tokens.shape());
  check(!target.defined() || (target.dim() == 1 && target.size(0) == tokens.size(0)), op, "target ",
        target.defined() ? target.shape().str() : "undefined", " does not give one class per sequence of tokens ",
        tokens.shape());
  EnableGradGuard grad_on;
  EmbeddingGradient<T> r;
  Tensor<T> var;
  if (options.create_graph) {
    // An alias of the lookup, so the gradient is taken at this node yet stays a function of the table.
    var = detail::alias(model.tok->forward(tokens));
  } else {
    NoGradGuard no_grad;
    var = model.tok->forward(tokens).detach();
  }
  if (!options.create_graph) var.requires_grad_();
  r.output = model.forward_embeddings(var, mask);
  r.target = target.defined() ? target : argmax(r.output.logits.detach(), 1);
  GradOptions<T> go;
  go.create_graph = options.create_graph;
  go.retain_graph = true;  // the caller may still backpropagate through output
  r.gradient = grad(detail::target_score(r.output.logits, r.target, op), var, go);
  r.embeddings = options.create_graph ? var : var.detach();
  return r;
}

}  // namespace metagrad
