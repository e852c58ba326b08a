// SPDX-License-Identifier: MIT
// Masked-token pretraining of a text Transformer (BERT's objective), so that a student can start
// from a pretrained body as SMaT's students do (the paper fine-tunes pretrained ELECTRA-small; a
// student trained from scratch on a few hundred examples learns little from anyone). Each real
// token is chosen with probability mask_prob; a chosen token is replaced by mask_id (80 %), by a
// random token (10 %) or kept (10 %), and the model predicts the original at every chosen place
// from its last hidden states through the tied token embedding (logits = h · Eᵀ, as BERT ties
// them). Padding is never chosen. Labels are not used.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "metagrad/core/random.hpp"
#include "metagrad/data/dataset.hpp"
#include "metagrad/data/text.hpp"
#include "metagrad/nn/transformer.hpp"
#include "metagrad/ops/indexing.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/autograd/engine.hpp"
#include "metagrad/optim/adam.hpp"
#include "metagrad/optim/clip.hpp"

namespace metagrad::learn {

struct MaskedLmOptions {
  double mask_prob = 0.15;
  std::int64_t mask_id = data::Vocabulary::kUnk;  // what a masked token becomes (80 % of the time)
  int epochs = 10;
  std::int64_t batch_size = 32;
  double lr = 1e-3;
  double weight_decay = 0.01;
  double clip_norm = 1.0;
  std::uint64_t seed = 0;
};

/// A batch with some tokens masked: the ids the model reads, and where the originals were.
struct MaskedTokens {
  IndexTensor inputs;     // [B, S]
  IndexTensor positions;  // [M], flat indices b·S + t of the chosen tokens
  IndexTensor targets;    // [M], their original ids
};

/// Chooses tokens of `ids` [B, S] where `mask` [B, S] is nonzero, each with probability
/// o.mask_prob, and corrupts them as BERT does. At least one token is chosen per batch.
template <Floating T>
MaskedTokens mask_tokens(const IndexTensor& ids, const Tensor<T>& mask, std::int64_t vocab_size,
                         const MaskedLmOptions& o, Generator& gen) {
  const char* op = "mask_tokens";
  check(ids.dim() == 2 && mask.shape() == ids.shape(), op, "ids ", ids.shape(), " and mask ", mask.shape(),
        " must both be [B, S]");
  check(o.mask_prob > 0 && o.mask_prob <= 1, op, "mask_prob must be in (0, 1], got ", o.mask_prob);
  check(o.mask_id >= 0 && o.mask_id < vocab_size, op, "mask_id ", o.mask_id, " is outside the vocabulary of ",
        vocab_size);
  const std::int64_t n = ids.numel();
  std::vector<std::int64_t> positions, targets;
  auto inputs = IndexTensor::empty(ids.shape());
  std::int64_t* in = inputs.fresh_data();
  std::int64_t first_real = -1;
  for (std::int64_t i = 0; i < n; ++i) {
    in[i] = ids.data()[i];
    if (mask.data()[i] == T(0)) continue;
    if (first_real < 0) first_real = i;
    if (gen.uniform() >= o.mask_prob) continue;
    positions.push_back(i);
    targets.push_back(ids.data()[i]);
    const double r = gen.uniform();
    if (r < 0.8) in[i] = o.mask_id;
    else if (r < 0.9) in[i] = static_cast<std::int64_t>(gen.uniform() * static_cast<double>(vocab_size)) % vocab_size;
  }
  check(first_real >= 0, op, "the batch ", ids.shape(), " is all padding");
  if (positions.empty()) {  // a short batch where no token was drawn: predict its first token
    positions.push_back(first_real);
    targets.push_back(ids.data()[first_real]);
    in[first_real] = o.mask_id;
  }
  auto to_index = [](const std::vector<std::int64_t>& v) {
    auto t = IndexTensor::empty(Shape{static_cast<std::int64_t>(v.size())});
    std::copy(v.begin(), v.end(), t.fresh_data());
    return t;
  };
  return {inputs, to_index(positions), to_index(targets)};
}

/// The masked-token cross-entropy of `model` on one corrupted batch (mean over chosen tokens).
template <Floating T>
Tensor<T> masked_lm_loss(nn::TransformerEncoder<T>& model, const MaskedTokens& m, const Tensor<T>& mask) {
  check(model.tok != nullptr, "masked_lm_loss", "the model has no token embedding (vocab_size 0)");
  const auto hidden = model.forward(m.inputs, mask).hidden;  // [B, S, d]
  const std::int64_t d = hidden.size(2);
  const auto chosen = index_select(reshape(hidden, Shape{hidden.numel() / d, d}), 0, m.positions);  // [M, d]
  return cross_entropy(matmul(chosen, transpose(model.tok->weight, 0, 1)), m.targets);
}

/// Pretrains `model` (every parameter but its classification head, which the objective does not
/// reach) on the documents of `d` with AdamW; calls on_epoch(epoch, mean loss) after each epoch.
/// Returns the mean loss per epoch.
template <Floating T>
std::vector<double> pretrain_masked_lm(nn::TransformerEncoder<T>& model, const data::TextDataset<T>& d,
                                       const MaskedLmOptions& o,
                                       const std::function<void(int, double)>& on_epoch = {}) {
  d.validate("pretrain_masked_lm");
  check(o.epochs >= 1 && o.batch_size >= 1, "pretrain_masked_lm", "needs epochs >= 1 and batch_size >= 1, got ",
        o.epochs, " and ", o.batch_size);
  std::vector<Tensor<T>> params;
  for (const auto& [name, p] : model.named_parameters())
    if (!name.starts_with("head.")) params.push_back(p);
  AdamW<T> opt(params, {.lr = o.lr, .weight_decay = o.weight_decay});
  Generator gen(o.seed);
  data::Loader loader(d, o.batch_size, o.seed);
  const std::int64_t vocab = model.tok ? model.tok->weight.size(0) : 0;
  std::vector<double> losses;
  model.train();
  for (int e = 1; e <= o.epochs; ++e) {
    double total = 0;
    std::int64_t batches = 0;
    for (const auto& b : loader.epoch(e)) {
      const auto m = mask_tokens(b.ids, b.mask, vocab, o, gen);
      opt.zero_grad();
      const auto loss = masked_lm_loss(model, m, b.mask);
      backward(loss);
      clip_grad_norm_(params, o.clip_norm);
      opt.step();
      total += static_cast<double>(loss.item());
      ++batches;
    }
    losses.push_back(total / static_cast<double>(batches));
    if (on_epoch) on_epoch(e, losses.back());
  }
  model.eval();
  return losses;
}

}  // namespace metagrad::learn
