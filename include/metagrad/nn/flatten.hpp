// SPDX-License-Identifier: MIT
// Flatten: collapses dims start..end into one (by default all but the batch dim), the bridge from
// convolutional feature maps to Linear layers. Unflatten is its inverse (a decoder going from a
// Linear layer back to feature maps), as torch.nn.Unflatten.
#pragma once
#include <cstdint>
#include <vector>

#include "metagrad/core/error.hpp"
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

/// Splits dim `dim` (negative counts from the end) into `sizes`: Unflatten(1, {2, 7, 7}) maps
/// [N, 98] to [N, 2, 7, 7]. The sizes must multiply to that dim's size.
template <Floating T = float>
class Unflatten final : public Layer<T> {
 public:
  Unflatten(std::int64_t dim, std::vector<std::int64_t> sizes) : dim_(dim), sizes_(std::move(sizes)) {
    check(!sizes_.empty(), "nn::Unflatten", "needs at least one size");
    for (const auto s : sizes_) check(s > 0, "nn::Unflatten", "sizes must be positive, got ", s);
  }
  Tensor<T> forward(const Tensor<T>& x) override {
    const auto rank = static_cast<std::int64_t>(x.dim());
    const auto d = dim_ < 0 ? dim_ + rank : dim_;
    check(d >= 0 && d < rank, "nn::Unflatten", "dim ", dim_, " is out of range for input ", x.shape());
    std::int64_t product = 1;
    for (const auto s : sizes_) product *= s;
    check(product == x.size(d), "nn::Unflatten", "sizes ", Shape(sizes_), " do not multiply to dim ", d,
          " of input ", x.shape());
    Shape out;
    for (std::int64_t i = 0; i < rank; ++i) {
      if (i == d)
        for (const auto s : sizes_) out.push_back(s);
      else
        out.push_back(x.size(i));
    }
    return reshape(x, out);
  }

 private:
  std::int64_t dim_;
  std::vector<std::int64_t> sizes_;
};

}  // namespace metagrad::nn
