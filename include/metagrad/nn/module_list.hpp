// SPDX-License-Identifier: MIT
// ModuleList: children of one type named "0", "1", ..., for repeated blocks whose forward takes
// more than one tensor (a transformer's layers), so they cannot sit in a Sequential.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "metagrad/nn/module.hpp"

namespace metagrad::nn {

template <Floating T, class M>
  requires std::is_base_of_v<Module<T>, M>
class ModuleList final : public Module<T> {
 public:
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    this->register_module(std::to_string(items_.size()), m);
    items_.push_back(m);
    return m;
  }
  template <class... Args>
  std::shared_ptr<M> emplace_back(Args&&... args) {
    return push_back(std::make_shared<M>(std::forward<Args>(args)...));
  }

  std::size_t size() const { return items_.size(); }
  M& operator[](std::size_t i) const {
    check(i < items_.size(), "ModuleList", "index ", i, " is out of range for ", items_.size(), " modules");
    return *items_[i];
  }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<std::shared_ptr<M>> items_;
};

}  // namespace metagrad::nn
