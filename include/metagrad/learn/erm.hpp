// SPDX-License-Identifier: MIT
// Empirical risk minimisation: plain cross entropy, the baseline every explanation loss is
// compared against (it ignores the mask, so on Decoy-MNIST it learns the decoy).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "metagrad/learn/batch.hpp"
#include "metagrad/ops/loss.hpp"

namespace metagrad::learn {

template <Floating T>
class Erm {
 public:
  /// Mean cross entropy of the model's logits on the batch.
  template <class M>
  Tensor<T> operator()(M& model, const Batch<T>& batch) const {
    detail::check_batch(batch, "Erm");
    return cross_entropy(detail::logits_of(model, batch.x, batch.y, "Erm"), batch.y);
  }
  void on_epoch(int /*epoch*/, int /*epochs*/) {}
  std::string name() const { return "erm"; }
  nlohmann::ordered_json setting() const { return nlohmann::ordered_json::object(); }
};

}  // namespace metagrad::learn
