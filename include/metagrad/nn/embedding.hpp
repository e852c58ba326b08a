// SPDX-License-Identifier: MIT
// Embedding: a table [num_embeddings, dim] read at integer ids, initialised N(0, 1) as in PyTorch.
// It takes an IndexTensor, not a Tensor<T>, so it is a Module but not a Layer; the gradient is
// the table rows' scatter-add (index_select's backward), differentiable again. Without a
// Generator the table is drawn from default_generator().
#pragma once
#include <cstdint>

#include "metagrad/nn/init.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/ops/indexing.hpp"

namespace metagrad::nn {

template <Floating T = float>
class Embedding final : public Module<T> {
 public:
  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, Generator& gen) {
    check(num_embeddings > 0 && embedding_dim > 0, "Embedding", "sizes must be positive, got ", num_embeddings,
          " x ", embedding_dim);
    weight = Tensor<T>::empty(Shape{num_embeddings, embedding_dim});
    init::normal_(weight, gen);
    this->register_parameter("weight", weight);
  }

  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim)
      : Embedding(num_embeddings, embedding_dim, default_generator()) {}

  /// ids of any shape S give embeddings of shape S + [dim].
  Tensor<T> forward(const IndexTensor& ids) {
    Shape out = ids.shape();
    out.push_back(weight.size(1));
    return reshape(index_select(weight, 0, reshape(ids, Shape{ids.numel()})), out);
  }
  Tensor<T> operator()(const IndexTensor& ids) { return forward(ids); }

  std::int64_t num_embeddings() const { return weight.size(0); }
  std::int64_t embedding_dim() const { return weight.size(1); }

  Tensor<T> weight;  // [num_embeddings, dim]
};

}  // namespace metagrad::nn
