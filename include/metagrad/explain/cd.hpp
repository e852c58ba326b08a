// SPDX-License-Identifier: MIT
// Contextual decomposition (Murdoch et al. 2018; Singh et al. 2019 for CNNs): run the input as two
// parts, rel = M ⊙ x (the features of interest) and irrel = (1 − M) ⊙ x, through a model,
// layer by layer, so that rel + irrel equals the layer's output at every depth. The bias of an
// affine layer is split between the parts in proportion to |W·rel| and |W·irrel| (never dropped,
// which keeps the sum exact); nonlinearities give rel the part it explains alone. Every rule is
// made of ops, so CDEP can train through the decomposition.
//
// Supported: Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, BatchNorm (eval),
// Dropout, Tanh, Sigmoid, Flatten, and any module built from these that declares its chain with
// layers() (Sequential, MLP, a module of one's own); a layer type of one's own adds its rule
// through ExplainRules<T>::cd_rule. Anything else is an error naming the layer. The protocol is
// in explain/layers.hpp.
#pragma once
#include <algorithm>
#include <cstdint>
#include <typeinfo>
#include <vector>

#include "metagrad/explain/explainer.hpp"
#include "metagrad/explain/layers.hpp"
#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/conv.hpp"
#include "metagrad/nn/dropout.hpp"
#include "metagrad/nn/flatten.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/norm.hpp"
#include "metagrad/nn/pool.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/binary.hpp"
#include "metagrad/ops/pool.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad {

namespace detail {

/// r = W·rel, i = W·irrel (no bias); the bias b joins them in the ratio (|r| + ε) : (|i| + ε).
template <Floating T>
Decomposition<T> split_bias(const Tensor<T>& r, const Tensor<T>& i, const Tensor<T>& b) {
  // One share, and the rest of b to i: a second bias_share(i, r, b) would cost more in backward.
  const auto rel_bias = bias_share(r, i, b);
  return {add(r, rel_bias), add(i, sub(b, rel_bias))};
}

/// The bias reshaped to broadcast over the layer output: [out] for Linear, [out, 1, 1] for conv.
template <Floating T>
Tensor<T> bias_for(const Tensor<T>& bias, int output_rank, bool channels_first) {
  if (!channels_first || output_rank <= 2) return bias;
  Shape s{bias.size(0)};
  for (int d = 2; d < output_rank; ++d) s.push_back(1);
  return reshape(bias, s);
}

/// Two-player Shapley split of an elementwise σ around σ(0): each part gets half its effect alone
/// plus half its effect added to the other, and σ(0) is split like a bias. The parts sum to
/// σ(rel + irrel), and a part that is zero gets nothing.
template <Floating T, class F>
Decomposition<T> split_monotone(const Decomposition<T>& in, F&& sigma) {
  const auto a = sigma(in.rel), b = sigma(in.irrel), ab = sigma(in.total());
  const auto at_zero = sigma(zeros<T>(Shape{}));
  const auto rel = mul(add(sub(a, at_zero), sub(ab, b)), T(0.5));
  const auto irrel = mul(add(sub(b, at_zero), sub(ab, a)), T(0.5));
  return split_bias(rel, irrel, at_zero);
}

template <Floating T, class L>
Decomposition<T> cd_affine(L& layer, const Decomposition<T>& in, bool channels_first) {
  const auto r = apply_affine(layer, in.rel), i = apply_affine(layer, in.irrel);
  if (!layer.bias.defined()) return {r, i};
  return split_bias(r, i, bias_for(layer.bias, r.dim(), channels_first));
}

}  // namespace detail

/// One layer's CD rule.
template <Floating T>
Decomposition<T> cd_layer(nn::Layer<T>& layer, const Decomposition<T>& in) {
  if (auto* rules = dynamic_cast<ExplainRules<T>*>(&layer)) return rules->cd_rule(in);
  if (auto* l = dynamic_cast<nn::Linear<T>*>(&layer)) return detail::cd_affine(*l, in, false);
  if (auto* l = dynamic_cast<nn::Conv2d<T>*>(&layer)) return detail::cd_affine(*l, in, true);
  if (dynamic_cast<nn::ReLU<T>*>(&layer)) {
    const auto rel = relu(in.rel);
    return {rel, sub(relu(in.total()), rel)};
  }
  if (auto* l = dynamic_cast<nn::MaxPool2d<T>*>(&layer)) {
    // Both parts follow the winners of the full input.
    const auto indices = max_pool2d_with_indices(in.total().detach(), l->kernel(), l->stride(), l->padding()).second;
    return {detail::pool_gather(in.rel, indices), detail::pool_gather(in.irrel, indices)};
  }
  if (dynamic_cast<nn::AvgPool2d<T>*>(&layer) || dynamic_cast<nn::AdaptiveAvgPool2d<T>*>(&layer) ||
      dynamic_cast<nn::Flatten<T>*>(&layer))
    return {layer.forward(in.rel), layer.forward(in.irrel)};
  if (auto* l = dynamic_cast<nn::Dropout<T>*>(&layer)) {
    if (!l->is_training()) return in;
    // One mask for both parts, so they still sum to a dropped-out total.
    const auto keep = l->forward(ones_like(in.rel));
    return {mul(in.rel, keep), mul(in.irrel, keep)};
  }
  if (auto* l = dynamic_cast<nn::BatchNorm<T>*>(&layer)) {
    check(!l->is_training(), "contextual_decomposition",
          "BatchNorm must be in evaluation mode (its batch statistics would mix the parts); call eval()");
    // In evaluation BatchNorm is per-channel affine, a·x + c: c = BN(0), a·rel = BN(rel) − c, and c
    // splits between the parts like a layer's bias.
    const auto c = l->forward(zeros_like(in.rel));
    return detail::split_bias(sub(l->forward(in.rel), c), sub(l->forward(in.irrel), c), c);
  }
  if (dynamic_cast<nn::Tanh<T>*>(&layer)) return detail::split_monotone(in, [](const Tensor<T>& t) { return tanh(t); });
  if (dynamic_cast<nn::Sigmoid<T>*>(&layer))
    return detail::split_monotone(in, [](const Tensor<T>& t) { return sigmoid(t); });
  if (const auto children = layer.layers(); !children.empty()) {
    Decomposition<T> h = in;
    for (nn::Layer<T>* child : children) h = cd_layer(*child, h);
    return h;
  }
  throw Error("contextual_decomposition: layer " + detail::type_name(typeid(layer)) +
              " is not supported (supported: Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, "
              "BatchNorm in eval, Dropout, Tanh, Sigmoid, Flatten, and modules that list such layers with "
              "layers(), like Sequential; a layer of another type can give its own rule by deriving from "
              "metagrad::ExplainRules<T> and overriding cd_rule)");
}

/// CD of `model` at x for the features where mask (broadcastable to x) is 1: rel + irrel = model(x).
/// With `trace`, the decomposition after every layer is appended to it. model: an nn::Layer<T> or
/// any module that declares its chain of layers with layers() (explain/layers.hpp).
template <Floating T, class M>
  requires LayerwiseModel<M, T>
Decomposition<T> contextual_decomposition(M& model, const Tensor<T>& x, const Tensor<T>& mask,
                                          std::vector<Decomposition<T>>* trace = nullptr) {
  check(broadcast_shapes(x.shape(), mask.shape(), "contextual_decomposition") == x.shape(), "contextual_decomposition",
        "mask ", mask.shape(), " does not broadcast to the input ", x.shape());
  const auto m = mask.detach();
  Decomposition<T> h{mul(x, m), mul(x, sub(T(1), m))};
  for (nn::Layer<T>* layer : detail::flatten_layers<T>(model)) {
    h = cd_layer(*layer, h);
    if (trace) trace->push_back(h);
  }
  return h;
}

/// CD as an explainer: the input is cut into tile×tile patches, and every pixel gets the CD score
/// (rel of the target logit) of the patch it lies in. Each patch is one mask; patches × examples
/// go through the model in chunks of at most max_batch rows.
struct ContextualDecomposition {
  std::int64_t tile = 4;
  std::int64_t max_batch = 512;

  template <Floating T, class M>
    requires LayerwiseModel<M, T>
  Tensor<T> operator()(M& model, const Tensor<T>& x, const IndexTensor& target = {},
                       const ExplainOptions& options = {}) const {
    const char* op = "ContextualDecomposition";
    check(x.dim() == 4, op, "needs images [N, C, H, W], got ", x.shape());
    check(tile >= 1 && max_batch >= 1, op, "needs tile >= 1 and max_batch >= 1, got ", tile, " and ", max_batch);
    const auto y = detail::resolve_target(model, x, target, op);
    const std::int64_t n = x.size(0), h = x.size(2), w = x.size(3);
    const std::int64_t th = (h + tile - 1) / tile, tw = (w + tile - 1) / tile, tiles = th * tw;
    // masks [tiles, 1, 1, H, W]: one-hot over the tile grid.
    auto masks = zeros<T>(Shape{tiles, 1, 1, h, w});
    T* mp = masks.fresh_data();
    for (std::int64_t r = 0; r < h; ++r)
      for (std::int64_t c = 0; c < w; ++c) mp[((r / tile) * tw + c / tile) * h * w + r * w + c] = T(1);
    GradModeGuard mode(options.create_graph);
    const Tensor<T> xin = options.create_graph ? x : x.detach();
    const std::int64_t per_call = std::clamp<std::int64_t>(max_batch / n, 1, tiles);
    std::vector<Tensor<T>> scores;
    for (std::int64_t t0 = 0; t0 < tiles; t0 += per_call) {
      const std::int64_t k = std::min(per_call, tiles - t0);
      const auto m = slice(masks, 0, t0, t0 + k);
      Shape flat{k * n, x.size(1), h, w};
      const auto xs = reshape(broadcast_to(unsqueeze(xin, 0), Shape{k, n, x.size(1), h, w}), flat);
      const auto ms = reshape(broadcast_to(m, Shape{k, n, 1, h, w}), Shape{k * n, 1, h, w});
      const auto rel = contextual_decomposition(model, xs, ms).rel;
      const auto targets = reshape(repeat(reshape(y, Shape{1, n}), {k, 1}), Shape{k * n, 1});
      scores.push_back(reshape(gather(rel, 1, targets), Shape{k, n, 1, 1, 1}));
    }
    const auto score = scores.size() == 1 ? scores[0] : concat(scores, 0);
    // Paint each tile's score onto its pixels: Σ_t score[t, n] · mask[t].
    return broadcast_to(sum(mul(score, masks), {0}), x.shape());
  }
};

}  // namespace metagrad
