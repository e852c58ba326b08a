// SPDX-License-Identifier: MIT
// Conv2d and ConvTranspose2d layers (NCHW, no groups) over the conv2d / conv_transpose2d ops,
// initialised like PyTorch's defaults: Kaiming-uniform with a = √5 and a bias uniform in
// ±1/√fan_in, where fan_in is computed from the weight's own layout ([out, in, kh, kw] for Conv2d,
// [in, out, kh, kw] for ConvTranspose2d, exactly as PyTorch does). Without a Generator the
// parameters come from default_generator() (seeded by manual_seed); the element type defaults to
// float, so `nn::Conv2d conv(1, 16, 3)` is a Conv2d<float>.
#pragma once
#include <cmath>
#include <cstdint>

#include "metagrad/nn/init.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/ops/conv.hpp"

namespace metagrad::nn {

struct Conv2dOptions {
  Size2d stride = 1;
  Size2d padding = 0;
  Size2d dilation = 1;
  bool bias = true;
};

struct ConvTranspose2dOptions {
  Size2d stride = 1;
  Size2d padding = 0;
  Size2d output_padding = 0;
  Size2d dilation = 1;
  bool bias = true;
};

}  // namespace metagrad::nn

namespace metagrad::detail {
/// Fills a conv weight and (if defined) bias as PyTorch's reset_parameters does.
template <Floating T>
void init_conv_parameters(Tensor<T>& weight, Tensor<T>& bias, Generator& gen) {
  nn::init::kaiming_uniform_(weight, gen, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(nn::init::fan_in_and_fan_out(weight.shape()).first));
    nn::init::uniform_(bias, gen, -bound, bound);
  }
}
inline void check_conv_sizes(std::int64_t in, std::int64_t out, Size2d kernel, const char* layer) {
  check(in > 0 && out > 0 && kernel.h > 0 && kernel.w > 0, layer, "channels and kernel must be positive, got ", in,
        " -> ", out, " with kernel ", kernel);
}
}  // namespace metagrad::detail

namespace metagrad::nn {

template <Floating T = float>
class Conv2d final : public Layer<T> {
 public:
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2d kernel, Generator& gen, Conv2dOptions options = {})
      : options_(options) {
    detail::check_conv_sizes(in_channels, out_channels, kernel, "Conv2d");
    weight = Tensor<T>::empty(Shape{out_channels, in_channels, kernel.h, kernel.w});
    if (options.bias) bias = Tensor<T>::empty(Shape{out_channels});
    detail::init_conv_parameters(weight, bias, gen);
    this->register_parameter("weight", weight);
    if (options.bias) this->register_parameter("bias", bias);
  }

  Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2d kernel, Conv2dOptions options = {})
      : Conv2d(in_channels, out_channels, kernel, default_generator(), options) {}

  Tensor<T> forward(const Tensor<T>& x) override {
    return conv2d(x, weight, bias, options_.stride, options_.padding, options_.dilation);
  }

  Tensor<T> weight;  // [out, in, kh, kw]
  Tensor<T> bias;    // [out], undefined without bias

 private:
  Conv2dOptions options_;
};

template <Floating T = float>
class ConvTranspose2d final : public Layer<T> {
 public:
  ConvTranspose2d(std::int64_t in_channels, std::int64_t out_channels, Size2d kernel, Generator& gen,
                  ConvTranspose2dOptions options = {})
      : options_(options) {
    detail::check_conv_sizes(in_channels, out_channels, kernel, "ConvTranspose2d");
    weight = Tensor<T>::empty(Shape{in_channels, out_channels, kernel.h, kernel.w});
    if (options.bias) bias = Tensor<T>::empty(Shape{out_channels});
    detail::init_conv_parameters(weight, bias, gen);
    this->register_parameter("weight", weight);
    if (options.bias) this->register_parameter("bias", bias);
  }

  ConvTranspose2d(std::int64_t in_channels, std::int64_t out_channels, Size2d kernel,
                  ConvTranspose2dOptions options = {})
      : ConvTranspose2d(in_channels, out_channels, kernel, default_generator(), options) {}

  Tensor<T> forward(const Tensor<T>& x) override {
    return conv_transpose2d(x, weight, bias, options_.stride, options_.padding, options_.output_padding,
                            options_.dilation);
  }

  Tensor<T> weight;  // [in, out, kh, kw]
  Tensor<T> bias;    // [out], undefined without bias

 private:
  ConvTranspose2dOptions options_;
};

}  // namespace metagrad::nn
