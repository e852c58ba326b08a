// SPDX-License-Identifier: MIT
// Sequential: layers applied one after the other. Children are named "0", "1", ... so parameter
// names read "0.weight", "2.bias" as in PyTorch.
#pragma once
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "metagrad/nn/module.hpp"

namespace metagrad::nn {

template <Floating T = float>
class Sequential : public Layer<T> {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Layer<T>>> layers) {
    for (const auto& layer : layers) push_back(layer);
  }
  explicit Sequential(const std::vector<std::shared_ptr<Layer<T>>>& layers) {
    for (const auto& layer : layers) push_back(layer);
  }

  /// Appends a layer; returns it with its own type.
  template <class L>
    requires std::is_base_of_v<Layer<T>, L>
  std::shared_ptr<L> push_back(std::shared_ptr<L> layer) {
    this->register_module(std::to_string(layers_.size()), layer);
    layers_.push_back(layer);
    return layer;
  }
  /// Constructs a layer of type L in place at the end.
  template <class L, class... Args>
  std::shared_ptr<L> emplace_back(Args&&... args) {
    return push_back(std::make_shared<L>(std::forward<Args>(args)...));
  }

  Tensor<T> forward(const Tensor<T>& x) override {
    Tensor<T> h = x;
    for (const auto& layer : layers_) h = layer->forward(h);
    return h;
  }

  std::vector<Layer<T>*> layers() override {
    std::vector<Layer<T>*> out;
    out.reserve(layers_.size());
    for (const auto& layer : layers_) out.push_back(layer.get());
    return out;
  }

  std::size_t size() const { return layers_.size(); }
  Layer<T>& operator[](std::size_t i) const {
    check(i < layers_.size(), "Sequential", "index ", i, " is out of range for ", layers_.size(), " layers");
    return *layers_[i];
  }
  auto begin() const { return layers_.begin(); }
  auto end() const { return layers_.end(); }

 private:
  std::vector<std::shared_ptr<Layer<T>>> layers_;
};

}  // namespace metagrad::nn
