// SPDX-License-Identifier: MIT
// A text classifier of the shape Murdoch et al. explain with contextual decomposition: token
// embeddings, an LSTM (batch_first), the last layer's hidden state at each sequence's last real
// token, and a linear head. contextual_decomposition_text (explain/cd_lstm.hpp) walks exactly
// these members: embedding, lstm, head.
#pragma once
#include <cstdint>

#include "metagrad/nn/embedding.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/recurrent.hpp"

namespace metagrad::nn {

struct LSTMTextClassifierConfig {
  std::int64_t vocab_size = 0, embedding_dim = 64, hidden_size = 64, num_classes = 2, num_layers = 1;
};

template <Floating T = float>
class LSTMTextClassifier final : public Module<T> {
 public:
  LSTMTextClassifier(const LSTMTextClassifierConfig& c, Generator& gen)
      : embedding(c.vocab_size, c.embedding_dim, gen),
        lstm(c.embedding_dim, c.hidden_size, gen, {.num_layers = c.num_layers, .batch_first = true}),
        head(c.hidden_size, c.num_classes, gen) {
    this->register_module("embedding", embedding);
    this->register_module("lstm", lstm);
    this->register_module("head", head);
  }
  explicit LSTMTextClassifier(const LSTMTextClassifierConfig& c) : LSTMTextClassifier(c, default_generator()) {}

  /// The last layer's final hidden state [N, H] for ids [N, T], lengths [N] (optional).
  Tensor<T> encode(const IndexTensor& ids, const IndexTensor& lengths = {}) {
    check(ids.dim() == 2, "LSTMTextClassifier", "ids ", ids.shape(), " must be [N, T]");
    return select(lstm(embedding(ids), {}, lengths).state.h, 0, lstm.num_layers() - 1);
  }
  /// Logits [N, num_classes].
  Tensor<T> forward(const IndexTensor& ids, const IndexTensor& lengths = {}) { return head(encode(ids, lengths)); }
  Tensor<T> operator()(const IndexTensor& ids, const IndexTensor& lengths = {}) { return forward(ids, lengths); }

  Embedding<T> embedding;
  LSTM<T> lstm;
  Linear<T> head;
};

}  // namespace metagrad::nn
