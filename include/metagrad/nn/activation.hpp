// SPDX-License-Identifier: MIT
// Activation functions as layers, so they can sit in a Sequential, and make_activation() for
// models (MLP, the transformer's feed-forward block) that take the activation as a setting.
#pragma once
#include <memory>

#include "metagrad/nn/module.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad::nn {

template <Floating T = float>
class ReLU final : public Layer<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return relu(x); }
};

template <Floating T = float>
class Tanh final : public Layer<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return tanh(x); }
};

template <Floating T = float>
class Sigmoid final : public Layer<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return sigmoid(x); }
};

/// Exact (erf) GELU by default, as PyTorch's; GeluApproximate::tanh for the tanh form.
template <Floating T = float>
class GELU final : public Layer<T> {
 public:
  explicit GELU(GeluApproximate approximate = GeluApproximate::none) : approximate_(approximate) {}
  Tensor<T> forward(const Tensor<T>& x) override { return gelu(x, approximate_); }

 private:
  GeluApproximate approximate_;
};

template <Floating T = float>
class LeakyReLU final : public Layer<T> {
 public:
  explicit LeakyReLU(T negative_slope = T(0.01)) : slope_(negative_slope) {}
  Tensor<T> forward(const Tensor<T>& x) override { return leaky_relu(x, slope_); }

 private:
  T slope_;
};

/// log(1 + exp(beta x)) / beta, linear where beta x > threshold.
template <Floating T = float>
class Softplus final : public Layer<T> {
 public:
  explicit Softplus(T beta = T(1), T threshold = T(20)) : beta_(beta), threshold_(threshold) {}
  Tensor<T> forward(const Tensor<T>& x) override { return softplus(x, beta_, threshold_); }

 private:
  T beta_, threshold_;
};

/// The activations a model can be configured with (each with its PyTorch default settings).
enum class Activation { relu, tanh, sigmoid, gelu, leaky_relu, softplus };

template <Floating T>
std::shared_ptr<Layer<T>> make_activation(Activation a) {
  switch (a) {
    case Activation::relu: return std::make_shared<ReLU<T>>();
    case Activation::tanh: return std::make_shared<Tanh<T>>();
    case Activation::sigmoid: return std::make_shared<Sigmoid<T>>();
    case Activation::gelu: return std::make_shared<GELU<T>>();
    case Activation::leaky_relu: return std::make_shared<LeakyReLU<T>>();
    case Activation::softplus: return std::make_shared<Softplus<T>>();
  }
  fail("make_activation", "unknown activation ", static_cast<int>(a));
}

}  // namespace metagrad::nn
