// SPDX-License-Identifier: MIT
// A copy of a module's state_dict in tensors of its own, allocated once and overwritten in place:
// how a trainer keeps the best state seen so far (by a validation score) and restores it at the end.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "metagrad/core/error.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/nn/named_tensors.hpp"

namespace metagrad::learn {

template <Floating T>
class StateSnapshot {
 public:
  /// Takes the model's current state; `owner` names the trainer in errors.
  template <class M>
  explicit StateSnapshot(const M& model, const char* owner = "StateSnapshot") : owner_(owner) {
    for (const auto& [name, t] : model.state_dict()) {
      names_.push_back(name);
      copies_.push_back(Tensor<T>::empty(t.shape()));
    }
    take(model);
  }

  /// Overwrites the copy with the model's current state.
  template <class M>
  void take(const M& model) {
    const auto state = model.state_dict();
    check(state.size() == copies_.size(), owner_, "the model's state_dict changed size during training");
    for (std::size_t i = 0; i < copies_.size(); ++i) {
      const Tensor<T>& t = state[i].second;
      check(t.shape() == copies_[i].shape(), owner_, "state '", names_[i], "' changed shape during training");
      std::copy_n(t.data(), t.numel(), copies_[i].mutable_data());
    }
  }

  NamedTensors<T> named() const {
    NamedTensors<T> out;
    for (std::size_t i = 0; i < copies_.size(); ++i) out.insert(names_[i], copies_[i]);
    return out;
  }

 private:
  const char* owner_;
  std::vector<std::string> names_;
  std::vector<Tensor<T>> copies_;
};

}  // namespace metagrad::learn
