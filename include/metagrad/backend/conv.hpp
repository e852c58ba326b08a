// SPDX-License-Identifier: MIT
// Backend facade, convolution family: conv2d's forward, its input and weight gradients, each
// straight from the input or from its im2col lowering (lower()), for one ConvGeometry. Each
// writes a preallocated output. See dispatch.hpp.
#pragma once
#include "metagrad/backend/cpu/conv.hpp"
#include "metagrad/backend/dispatch.hpp"
#include "metagrad/backend/geometry.hpp"

namespace metagrad::backend {

/// cols = the im2col lowering of input x for geometry g (batch * patch * positions values).
template <Floating T>
void lower(const Tensor<T>& x, const ConvGeometry& g, Tensor<T>& cols) {
  dispatch("conv2d", [&] { cpu::lower_batch(x.data(), g, cols.fresh_data()); }, x, cols);
}
/// y = conv2d(x, w) + bias; bias may be undefined.
template <Floating T>
void conv2d_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias, const ConvGeometry& g, Tensor<T>& y) {
  const T* b = bias.defined() ? bias.data() : nullptr;
  if (bias.defined()) common_device("conv2d", x, bias);
  dispatch("conv2d", [&] { cpu::conv2d_forward(x.data(), w.data(), b, y.fresh_data(), g); }, x, w, y);
}
/// The same from x's lowering `cols`.
template <Floating T>
void conv2d_forward_lowered(const Tensor<T>& cols, const Tensor<T>& w, const Tensor<T>& bias, const ConvGeometry& g,
                            Tensor<T>& y) {
  const T* b = bias.defined() ? bias.data() : nullptr;
  if (bias.defined()) common_device("conv2d", cols, bias);
  dispatch("conv2d", [&] { cpu::conv2d_forward_lowered(cols.data(), w.data(), b, y.fresh_data(), g); }, cols, w, y);
}
/// dx = the gradient of conv2d with respect to its input, for output gradient gy.
template <Floating T>
void conv2d_input_grad(const Tensor<T>& gy, const Tensor<T>& w, const ConvGeometry& g, Tensor<T>& dx) {
  dispatch("conv2d_input_grad", [&] { cpu::conv2d_input_grad(gy.data(), w.data(), dx.fresh_data(), g); }, gy, w, dx);
}
/// dw = the gradient of conv2d with respect to its weight, for input x and output gradient gy.
template <Floating T>
void conv2d_weight_grad(const Tensor<T>& x, const Tensor<T>& gy, const ConvGeometry& g, Tensor<T>& dw) {
  dispatch("conv2d_weight_grad", [&] { cpu::conv2d_weight_grad(x.data(), gy.data(), dw.fresh_data(), g); }, x, gy, dw);
}
/// The same from x's lowering `cols`.
template <Floating T>
void conv2d_weight_grad_lowered(const Tensor<T>& cols, const Tensor<T>& gy, const ConvGeometry& g, Tensor<T>& dw) {
  dispatch("conv2d_weight_grad", [&] {
    cpu::conv2d_weight_grad_lowered(cols.data(), gy.data(), dw.fresh_data(), g);
  }, cols, gy, dw);
}

}  // namespace metagrad::backend
