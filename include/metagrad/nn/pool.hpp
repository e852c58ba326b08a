// SPDX-License-Identifier: MIT
// Pooling layers over the pooling ops: MaxPool2d, AvgPool2d (stride defaults to the kernel) and
// AdaptiveAvgPool2d (a fixed output size, whatever the input's).
#pragma once
#include <optional>

#include "metagrad/nn/module.hpp"
#include "metagrad/ops/pool.hpp"

namespace metagrad::nn {

template <Floating T = float>
class MaxPool2d final : public Layer<T> {
 public:
  explicit MaxPool2d(Size2d kernel, std::optional<Size2d> stride = std::nullopt, Size2d padding = 0)
      : kernel_(kernel), stride_(stride), padding_(padding) {}
  Tensor<T> forward(const Tensor<T>& x) override { return max_pool2d(x, kernel_, stride_, padding_); }

  Size2d kernel() const { return kernel_; }
  Size2d stride() const { return stride_.value_or(kernel_); }
  Size2d padding() const { return padding_; }

 private:
  Size2d kernel_;
  std::optional<Size2d> stride_;
  Size2d padding_;
};

template <Floating T = float>
class AvgPool2d final : public Layer<T> {
 public:
  explicit AvgPool2d(Size2d kernel, std::optional<Size2d> stride = std::nullopt, Size2d padding = 0,
                     bool count_include_pad = true)
      : kernel_(kernel), stride_(stride), padding_(padding), count_include_pad_(count_include_pad) {}
  Tensor<T> forward(const Tensor<T>& x) override {
    return avg_pool2d(x, kernel_, stride_, padding_, count_include_pad_);
  }

 private:
  Size2d kernel_;
  std::optional<Size2d> stride_;
  Size2d padding_;
  bool count_include_pad_;
};

template <Floating T = float>
class AdaptiveAvgPool2d final : public Layer<T> {
 public:
  explicit AdaptiveAvgPool2d(Size2d output_size) : output_size_(output_size) {}
  Tensor<T> forward(const Tensor<T>& x) override { return adaptive_avg_pool2d(x, output_size_); }

 private:
  Size2d output_size_;
};

}  // namespace metagrad::nn
