// SPDX-License-Identifier: MIT
// NamedTensors: an insertion-ordered map from dotted names ("encoder.layers.0.attn.q.weight") to
// tensors. It is what named_parameters(), state_dict() and functional_call() speak; insertion order
// is the modules' registration order, so two modules built alike list their tensors alike.
#pragma once
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "metagrad/core/tensor.hpp"

namespace metagrad {

template <Element T>
class NamedTensors {
 public:
  using value_type = std::pair<std::string, Tensor<T>>;
  using const_iterator = typename std::vector<value_type>::const_iterator;

  NamedTensors() = default;
  NamedTensors(std::initializer_list<value_type> items) {
    for (const auto& [name, t] : items) insert(name, t);
  }

  /// Appends `name`; a name may appear only once.
  void insert(std::string name, Tensor<T> t) {
    check(!index_.contains(name), "NamedTensors", "duplicate name '", name, "'");
    index_.emplace(name, items_.size());
    items_.emplace_back(std::move(name), std::move(t));
  }

  bool contains(std::string_view name) const { return index_.contains(std::string(name)); }
  /// The tensor called `name`, or nullptr.
  const Tensor<T>* find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &items_[it->second].second;
  }
  const Tensor<T>& at(std::string_view name) const {
    const Tensor<T>* t = find(name);
    check(t != nullptr, "NamedTensors", "no tensor named '", name, "'");
    return *t;
  }

  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const value_type& operator[](std::size_t i) const { return items_[i]; }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(items_.size());
    for (const auto& item : items_) out.push_back(item.first);
    return out;
  }
  std::vector<Tensor<T>> tensors() const {
    std::vector<Tensor<T>> out;
    out.reserve(items_.size());
    for (const auto& item : items_) out.push_back(item.second);
    return out;
  }

 private:
  std::vector<value_type> items_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace metagrad
