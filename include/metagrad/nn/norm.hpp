// SPDX-License-Identifier: MIT
// LayerNorm and BatchNorm, written with the mean and var ops so that every derivative order is
// the exact one (the cuDNN-style fused batch norm of other libraries gets second order wrong).
// BatchNorm keeps running statistics as buffers: training normalises with the batch statistics
// and updates the running ones; evaluation normalises with the running ones.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/nn/init.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad::nn {

/// Normalises over the trailing dims `normalized_shape` to zero mean and unit (biased) variance,
/// then scales and shifts element-wise (weight 1, bias 0 at the start) when affine.
template <Floating T = float>
class LayerNorm final : public Layer<T> {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true)
      : shape_(normalized_shape), eps_(eps) {
    check(shape_.rank() >= 1 && shape_.numel() > 0, "LayerNorm", "normalized shape ", shape_,
          " must have rank >= 1 and no empty extent");
    check(eps > 0, "LayerNorm", "eps must be positive, got ", eps);
    for (int i = 0; i < shape_.rank(); ++i) dims_.push_back(i - shape_.rank());
    if (elementwise_affine) {
      weight = ones<T>(shape_);
      bias = zeros<T>(shape_);
      this->register_parameter("weight", weight);
      this->register_parameter("bias", bias);
    }
  }
  explicit LayerNorm(std::int64_t features, double eps = 1e-5, bool elementwise_affine = true)
      : LayerNorm(Shape{features}, eps, elementwise_affine) {}

  Tensor<T> forward(const Tensor<T>& x) override {
    const int lead = x.dim() - shape_.rank();
    check(lead >= 0 && std::equal(shape_.begin(), shape_.end(), x.shape().begin() + lead), "LayerNorm", "input ",
          x.shape(), " does not end in the normalized shape ", shape_);
    const auto centred = x - mean(x, dims_, true);
    const auto y = centred / sqrt(var(x, dims_, Correction{0}, true) + T(eps_));
    return weight.defined() ? y * weight + bias : y;
  }

  Tensor<T> weight;  // normalized_shape, undefined without affine
  Tensor<T> bias;

 private:
  Shape shape_;
  std::vector<std::int64_t> dims_;
  double eps_;
};

/// Batch normalisation over every dim but the channel dim 1: [N, C] or [N, C, L] (BatchNorm1d),
/// [N, C, H, W] (BatchNorm2d). The running variance is updated with the unbiased batch variance,
/// running = (1 - momentum) running + momentum batch, as in PyTorch.
template <Floating T = float>
class BatchNorm : public Layer<T> {
 public:
  BatchNorm(std::int64_t channels, double eps = 1e-5, double momentum = 0.1, bool affine = true,
            bool track_running_stats = true)
      : channels_(channels), eps_(eps), momentum_(momentum) {
    check(channels > 0, "BatchNorm", "channels must be positive, got ", channels);
    check(eps > 0 && momentum >= 0 && momentum <= 1, "BatchNorm", "needs eps > 0 and momentum in [0, 1], got ", eps,
          " and ", momentum);
    if (affine) {
      weight = ones<T>(Shape{channels});
      bias = zeros<T>(Shape{channels});
      this->register_parameter("weight", weight);
      this->register_parameter("bias", bias);
    }
    if (track_running_stats) {
      running_mean = zeros<T>(Shape{channels});
      running_var = ones<T>(Shape{channels});
      this->register_buffer("running_mean", running_mean);
      this->register_buffer("running_var", running_var);
    }
  }

  Tensor<T> forward(const Tensor<T>& x) override {
    check_input(x);
    const std::int64_t c = channels_;
    check(x.dim() >= 2 && x.size(1) == c, "BatchNorm", "input ", x.shape(), " does not have ", c, " channels in dim 1");
    std::vector<std::int64_t> dims{0};
    Shape channel_shape{1, c};
    for (int d = 2; d < x.dim(); ++d) {
      dims.push_back(d);
      channel_shape.push_back(1);
    }
    const bool batch_stats = this->is_training() || !running_mean.defined();
    Tensor<T> mu, v;
    if (batch_stats) {
      const std::int64_t n = x.numel() / c;
      check(n > 1, "BatchNorm", "needs more than one value per channel to normalise in training, got input ",
            x.shape());
      mu = mean(x, dims, true);
      v = var(x, dims, Correction{0}, true);
      if (this->is_training() && running_mean.defined()) update_running(mu, v, n);
    } else {
      mu = reshape(running_mean, channel_shape);
      v = reshape(running_var, channel_shape);
    }
    const auto y = (x - mu) / sqrt(v + T(eps_));
    return weight.defined() ? y * reshape(weight, channel_shape) + reshape(bias, channel_shape) : y;
  }

  std::int64_t num_channels() const { return channels_; }

  Tensor<T> weight;  // [C], undefined without affine
  Tensor<T> bias;
  Tensor<T> running_mean;  // [C], undefined without track_running_stats
  Tensor<T> running_var;

 protected:
  virtual void check_input(const Tensor<T>&) const {}

 private:
  // In place, so the update reaches whatever tensors the buffers are bound to (also under
  // functional_call), and outside the graph.
  void update_running(const Tensor<T>& mu, const Tensor<T>& v, std::int64_t n) {
    NoGradGuard no_grad;
    const T m = static_cast<T>(momentum_);
    const auto new_mean = running_mean * (T(1) - m) + reshape(mu.detach(), running_mean.shape()) * m;
    const auto unbiased = reshape(v.detach(), running_var.shape()) * (static_cast<T>(n) / static_cast<T>(n - 1));
    const auto new_var = running_var * (T(1) - m) + unbiased * m;
    std::copy_n(new_mean.data(), new_mean.numel(), running_mean.mutable_data());
    std::copy_n(new_var.data(), new_var.numel(), running_var.mutable_data());
  }

  std::int64_t channels_;
  double eps_, momentum_;
};

template <Floating T = float>
class BatchNorm1d final : public BatchNorm<T> {
 public:
  // Spelled out rather than inherited: C++20 deduces class template arguments only from a class's
  // own constructors, and `nn::BatchNorm1d bn(16);` should be a BatchNorm1d<float>.
  BatchNorm1d(std::int64_t channels, double eps = 1e-5, double momentum = 0.1, bool affine = true,
              bool track_running_stats = true)
      : BatchNorm<T>(channels, eps, momentum, affine, track_running_stats) {}

 protected:
  void check_input(const Tensor<T>& x) const override {
    check(x.dim() == 2 || x.dim() == 3, "BatchNorm1d", "needs input [N, C] or [N, C, L], got ", x.shape());
  }
};

template <Floating T = float>
class BatchNorm2d final : public BatchNorm<T> {
 public:
  // Spelled out rather than inherited: C++20 deduces class template arguments only from a class's
  // own constructors, and `nn::BatchNorm2d bn(16);` should be a BatchNorm2d<float>.
  BatchNorm2d(std::int64_t channels, double eps = 1e-5, double momentum = 0.1, bool affine = true,
              bool track_running_stats = true)
      : BatchNorm<T>(channels, eps, momentum, affine, track_running_stats) {}

 protected:
  void check_input(const Tensor<T>& x) const override {
    check(x.dim() == 4, "BatchNorm2d", "needs input [N, C, H, W], got ", x.shape());
  }
};

}  // namespace metagrad::nn
