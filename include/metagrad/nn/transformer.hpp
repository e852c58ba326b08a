// SPDX-License-Identifier: MIT
// A small Transformer encoder classifier (the SMaT teacher and student): token and learned
// position embeddings, L layers of multi-head self-attention and a feed-forward block (post-LN as
// in BERT, or pre-LN), a masked mean (or first-token) pool and a linear head. Every layer's
// attention logits are returned as graph nodes, because SMaT's explainers read them and its
// meta-gradient flows through them. forward_embeddings() starts from the input embeddings, which
// gradient explainers differentiate with respect to (and a patch embedding can feed, for a ViT);
// embedding_gradient (explain/embedding_gradient.hpp) gives that gradient in one call.
// Every module also has a constructor without a Generator that draws from default_generator()
// (seeded by manual_seed), in the same order.
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "metagrad/backend/unary.hpp"
#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/dropout.hpp"
#include "metagrad/nn/embedding.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/module_list.hpp"
#include "metagrad/nn/norm.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/softmax.hpp"

namespace metagrad::nn {

template <Floating T = float>
struct AttentionOutput {
  Tensor<T> out;     // [B, S, d_model]
  Tensor<T> logits;  // [B, H, S, S]: q·kᵀ/√d_head, before the padding bias and the softmax
};

/// Multi-head self-attention with separate q, k, v and output projections (d_model -> d_model).
template <Floating T = float>
class MultiheadSelfAttention final : public Module<T> {
 public:
  MultiheadSelfAttention(std::int64_t d_model, std::int64_t num_heads, Generator& gen, double dropout = 0.0)
      : q(d_model, d_model, gen), k(d_model, d_model, gen), v(d_model, d_model, gen), o(d_model, d_model, gen),
        drop(dropout, gen), heads_(num_heads) {
    check(num_heads > 0 && d_model % num_heads == 0, "MultiheadSelfAttention", "d_model ", d_model,
          " is not divisible into ", num_heads, " heads");
    this->register_module("q", q);
    this->register_module("k", k);
    this->register_module("v", v);
    this->register_module("o", o);
    this->register_module("drop", drop);
  }
  MultiheadSelfAttention(std::int64_t d_model, std::int64_t num_heads, double dropout = 0.0)
      : MultiheadSelfAttention(d_model, num_heads, default_generator(), dropout) {}

  /// x [B, S, d_model]; mask_bias (optional) is added to the logits and must broadcast to
  /// [B, H, S, S], e.g. [B, 1, 1, S] with a large negative value at padded keys.
  AttentionOutput<T> forward(const Tensor<T>& x, const Tensor<T>& mask_bias = {}) {
    const std::int64_t d = q.in_features();
    check(x.dim() == 3 && x.size(2) == d, "MultiheadSelfAttention", "input ", x.shape(), " is not [B, S, ", d, "]");
    const std::int64_t dh = d / heads_;
    // Scaling q instead of the [S, S] logits is the same product with fewer multiplications.
    const auto qh = split_heads(q(x) * T(1 / std::sqrt(static_cast<double>(dh))));
    const auto logits = bmm(qh, split_heads(k(x)), false, true);
    const auto weights = drop(mask_bias.defined() ? softmax_with_bias(logits, mask_bias, -1) : softmax(logits, -1));
    const auto context = bmm(weights, split_heads(v(x)));
    return {o(reshape(permute(context, {0, 2, 1, 3}), x.shape())), logits};
  }

  std::int64_t num_heads() const { return heads_; }

  Linear<T> q, k, v, o;
  Dropout<T> drop;  // on the attention weights

 private:
  /// [B, S, H·dh] -> [B, H, S, dh]
  Tensor<T> split_heads(const Tensor<T>& t) const {
    return permute(reshape(t, Shape{t.size(0), t.size(1), heads_, t.size(2) / heads_}), {0, 2, 1, 3});
  }

  std::int64_t heads_;
};

/// Self-attention then a feed-forward block (d -> d_ff -> d), each with a residual connection.
/// Post-LN: x = LN(x + f(x)); pre-LN: x = x + f(LN(x)).
template <Floating T = float>
class TransformerEncoderLayer final : public Module<T> {
 public:
  TransformerEncoderLayer(std::int64_t d_model, std::int64_t num_heads, std::int64_t d_ff, Generator& gen,
                          double dropout = 0.0, bool pre_norm = false, Activation activation = Activation::gelu,
                          double eps = 1e-5)
      : attn(d_model, num_heads, gen, dropout), ln1(d_model, eps), ln2(d_model, eps), ff1(d_model, d_ff, gen),
        ff2(d_ff, d_model, gen), drop1(dropout, gen), drop_ff(dropout, gen), drop2(dropout, gen),
        act_(make_activation<T>(activation)), pre_norm_(pre_norm) {
    this->register_module("attn", attn);
    this->register_module("ln1", ln1);
    this->register_module("ln2", ln2);
    this->register_module("ff1", ff1);
    this->register_module("ff2", ff2);
    this->register_module("drop1", drop1);
    this->register_module("drop_ff", drop_ff);
    this->register_module("drop2", drop2);
  }
  TransformerEncoderLayer(std::int64_t d_model, std::int64_t num_heads, std::int64_t d_ff, double dropout = 0.0,
                          bool pre_norm = false, Activation activation = Activation::gelu, double eps = 1e-5)
      : TransformerEncoderLayer(d_model, num_heads, d_ff, default_generator(), dropout, pre_norm, activation, eps) {}

  /// x [B, S, d_model]; returns the layer's output and its attention logits.
  AttentionOutput<T> forward(const Tensor<T>& x, const Tensor<T>& mask_bias = {}) {
    auto feed_forward = [&](const Tensor<T>& h) { return drop2(ff2(drop_ff(act_->forward(ff1(h))))); };
    if (pre_norm_) {
      auto a = attn.forward(ln1(x), mask_bias);
      const auto h = x + drop1(a.out);
      return {h + feed_forward(ln2(h)), std::move(a.logits)};
    }
    auto a = attn.forward(x, mask_bias);
    const auto h = ln1(x + drop1(a.out));
    return {ln2(h + feed_forward(h)), std::move(a.logits)};
  }

  MultiheadSelfAttention<T> attn;
  LayerNorm<T> ln1, ln2;
  Linear<T> ff1, ff2;
  Dropout<T> drop1, drop_ff, drop2;

 private:
  std::shared_ptr<Layer<T>> act_;  // no parameters, so not registered
  bool pre_norm_;
};

enum class Pooling { mean, first };

struct TransformerConfig {
  std::int64_t vocab_size = 0;  // 0: no token embedding, only forward_embeddings()
  std::int64_t max_len = 128;
  std::int64_t d_model = 64;
  std::int64_t num_heads = 4;
  std::int64_t d_ff = 256;
  std::int64_t num_layers = 2;
  std::int64_t num_classes = 2;
  double dropout = 0.0;
  bool pre_norm = false;
  Activation activation = Activation::gelu;
  double layer_norm_eps = 1e-5;
  Pooling pooling = Pooling::mean;  // mean over unpadded tokens, or the first token's state
};

template <Floating T = float>
struct TransformerOutput {
  Tensor<T> logits;                         // [B, num_classes]
  Tensor<T> pooled;                         // [B, d_model]
  Tensor<T> hidden;                         // [B, S, d_model], the last layer's token states
  std::vector<Tensor<T>> attention_logits;  // per layer, [B, H, S, S], before padding bias and softmax
};

/// Parameter names: "tok.weight", "pos.weight", "layers.<i>.attn.q.weight", "layers.<i>.ln1.weight",
/// "layers.<i>.ff1.weight", ..., "norm.weight" (pre-LN only), "head.weight".
template <Floating T = float>
class TransformerEncoder final : public Module<T> {
  TransformerConfig config_;  // first, so the members below can be built from it

 public:
  /// Parameters are drawn from `gen` in registration order: tok, pos, the layers, head.
  TransformerEncoder(const TransformerConfig& config, Generator& gen) : config_(checked(config)) {
    const auto& c = config_;
    if (c.vocab_size > 0)
      tok = this->register_module("tok", std::make_shared<Embedding<T>>(c.vocab_size, c.d_model, gen));
    pos = this->register_module("pos", std::make_shared<Embedding<T>>(c.max_len, c.d_model, gen));
    drop = this->register_module("drop", std::make_shared<Dropout<T>>(c.dropout, gen));
    for (std::int64_t i = 0; i < c.num_layers; ++i)
      layers.emplace_back(c.d_model, c.num_heads, c.d_ff, gen, c.dropout, c.pre_norm, c.activation, c.layer_norm_eps);
    this->register_module("layers", layers);
    if (c.pre_norm) norm = this->register_module("norm", std::make_shared<LayerNorm<T>>(c.d_model, c.layer_norm_eps));
    head = this->register_module("head", std::make_shared<Linear<T>>(c.d_model, c.num_classes, gen));
  }
  explicit TransformerEncoder(const TransformerConfig& config) : TransformerEncoder(config, default_generator()) {}

  /// tokens [B, S]; mask [B, S] is 1 at tokens and 0 at padding (undefined: no padding).
  TransformerOutput<T> forward(const IndexTensor& tokens, const Tensor<T>& mask = {}) {
    check(tok != nullptr, "TransformerEncoder", "built with vocab_size 0: call forward_embeddings");
    check(tokens.dim() == 2, "TransformerEncoder", "tokens must be [B, S], got ", tokens.shape());
    return forward_embeddings(tok->forward(tokens), mask);
  }
  TransformerOutput<T> forward(const IndexTensor& tokens, const IndexTensor& mask) {
    return forward(tokens, backend::cast<T>(mask));
  }

  /// embeddings [B, S, d_model] (the token embeddings; positions are added here).
  TransformerOutput<T> forward_embeddings(const Tensor<T>& embeddings, const Tensor<T>& mask = {}) {
    const char* op = "TransformerEncoder";
    check(embeddings.dim() == 3 && embeddings.size(2) == config_.d_model, op, "embeddings ", embeddings.shape(),
          " are not [B, S, ", config_.d_model, "]");
    const std::int64_t b = embeddings.size(0), s = embeddings.size(1);
    check(s >= 1 && s <= config_.max_len, op, "sequence length ", s, " of embeddings ", embeddings.shape(),
          " is outside [1, max_len = ", config_.max_len, "]");
    Tensor<T> mask_bias;
    if (mask.defined()) {
      check(mask.shape() == Shape{b, s}, op, "mask ", mask.shape(), " does not match embeddings ", embeddings.shape());
      for (std::int64_t i = 0; i < b; ++i) {
        bool any = false;
        for (std::int64_t j = 0; j < s; ++j) any = any || mask.data()[i * s + j] != T(0);
        check(any, op, "sequence ", i, " is all padding in mask ", mask.shape());
      }
      // exp of a logit this far down is exactly 0, so padded keys get exactly zero weight.
      mask_bias = reshape((mask - T(1)) * T(1e9), Shape{b, 1, 1, s});
    }
    TransformerOutput<T> out;
    Tensor<T> h = drop->forward(embeddings + pos->forward(arange<std::int64_t>(s)));
    for (auto& layer : layers) {
      auto a = layer->forward(h, mask_bias);
      h = std::move(a.out);
      out.attention_logits.push_back(std::move(a.logits));
    }
    if (norm) h = norm->forward(h);
    out.hidden = h;
    if (config_.pooling == Pooling::first) {
      out.pooled = select(h, 1, 0);
    } else if (mask.defined()) {
      out.pooled = sum(h * reshape(mask, Shape{b, s, 1}), {1}) / sum(mask, {1}, true);
    } else {
      out.pooled = mean(h, {1});
    }
    out.logits = head->forward(out.pooled);
    return out;
  }

  const TransformerConfig& config() const { return config_; }

  std::shared_ptr<Embedding<T>> tok;  // null when vocab_size is 0
  std::shared_ptr<Embedding<T>> pos;
  std::shared_ptr<Dropout<T>> drop;  // on the embeddings
  ModuleList<T, TransformerEncoderLayer<T>> layers;
  std::shared_ptr<LayerNorm<T>> norm;  // final LayerNorm, pre-LN only
  std::shared_ptr<Linear<T>> head;

 private:
  static const TransformerConfig& checked(const TransformerConfig& c) {
    check(c.vocab_size >= 0 && c.max_len > 0 && c.d_model > 0 && c.d_ff > 0 && c.num_layers > 0 && c.num_classes > 0,
          "TransformerEncoder", "sizes must be positive (vocab_size may be 0), got vocab_size ", c.vocab_size,
          ", max_len ", c.max_len, ", d_model ", c.d_model, ", d_ff ", c.d_ff, ", num_layers ", c.num_layers,
          ", num_classes ", c.num_classes);
    return c;
  }
};

}  // namespace metagrad::nn
