// SPDX-License-Identifier: MIT
// Flatten: collapses dims start..end into one (by default all but the batch dim), the bridge from
// convolutional feature maps to Linear layers.
#pragma once
#include <cstdint>

#include "metagrad/nn/module.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad::nn {

template <Floating T = float>
class Flatten final : public Layer<T> {
 public:
  explicit Flatten(std::int64_t start_dim = 1, std::int64_t end_dim = -1) : start_(start_dim), end_(end_dim) {}
  Tensor<T> forward(const Tensor<T>& x) override { return flatten(x, start_, end_); }

 private:
  std::int64_t start_, end_;
};

}  // namespace metagrad::nn
