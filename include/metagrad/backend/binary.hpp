// SPDX-License-Identifier: MIT
// Backend facade, element-wise binary family: arithmetic with NumPy broadcasting to `out`, the
// fused first-order backward kernels of the activations, and contextual decomposition's bias share
// with its backward. See dispatch.hpp.
#pragma once
#include "metagrad/backend/cpu/binary.hpp"
#include "metagrad/backend/dispatch.hpp"
#include "metagrad/backend/types.hpp"

namespace metagrad::backend {

template <Floating T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return dispatch("add", [&] { return cpu::add(a, b, out); }, a, b);
}
template <Floating T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return dispatch("sub", [&] { return cpu::sub(a, b, out); }, a, b);
}
template <Floating T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return dispatch("mul", [&] { return cpu::mul(a, b, out); }, a, b);
}
template <Floating T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return dispatch("div", [&] { return cpu::div(a, b, out); }, a, b);
}
/// (a - b)²
template <Floating T>
Tensor<T> squared_difference(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return dispatch("squared_difference", [&] { return cpu::squared_difference(a, b, out); }, a, b);
}
/// sign(a - b), 0 where equal.
template <Floating T>
Tensor<T> sign_of_difference(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return dispatch("sign_of_difference", [&] { return cpu::sign_of_difference(a, b, out); }, a, b);
}
template <Floating T>
Tensor<T> maximum(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return dispatch("maximum", [&] { return cpu::maximum(a, b, out); }, a, b);
}
template <Floating T>
Tensor<T> minimum(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return dispatch("minimum", [&] { return cpu::minimum(a, b, out); }, a, b);
}
template <Floating T>
Tensor<T> pow(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return dispatch("pow", [&] { return cpu::pow(a, b, out); }, a, b);
}
/// maximum's (Loses = lt) or minimum's (Loses = gt) gradient share of x against y.
template <Compare Loses, Floating T>
Tensor<T> extremum_share(const Tensor<T>& x, const Tensor<T>& y, const Shape& out) {
  return dispatch("extremum_share", [&] { return cpu::extremum_share<Loses>(x, y, out); }, x, y);
}
/// 1 where a == 0 and b >= 0, else 0.
template <Floating T>
Tensor<T> pow_zero_base(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return dispatch("pow_zero_base", [&] { return cpu::pow_zero_base(a, b, out); }, a, b);
}

/// b·(|x| + eps)/(|x| + |y| + 2 eps), b broadcast to x's shape (contextual decomposition's bias split).
template <Floating T>
Tensor<T> bias_share(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& b, T eps) {
  return dispatch("bias_share", [&] { return cpu::bias_share(x, y, b, eps); }, x, y, b);
}
/// h·sign(x)(|y| + eps)/(|x| + |y| + 2 eps)²: bias_share's gradient in x per unit of h = g·b.
template <Floating T>
Tensor<T> bias_share_backward(const Tensor<T>& h, const Tensor<T>& x, const Tensor<T>& y, T eps) {
  return dispatch("bias_share_backward", [&] { return cpu::bias_share_backward(h, x, y, eps); }, h, x, y);
}

template <Floating T>
Tensor<T> relu_backward(const Tensor<T>& g, const Tensor<T>& x) {
  return dispatch("relu_backward", [&] { return cpu::relu_backward(g, x); }, g, x);
}
template <Floating T>
Tensor<T> tanh_backward(const Tensor<T>& g, const Tensor<T>& y) {
  return dispatch("tanh_backward", [&] { return cpu::tanh_backward(g, y); }, g, y);
}
template <Floating T>
Tensor<T> sigmoid_backward(const Tensor<T>& g, const Tensor<T>& y) {
  return dispatch("sigmoid_backward", [&] { return cpu::sigmoid_backward(g, y); }, g, y);
}
template <Floating T>
Tensor<T> softplus_backward(const Tensor<T>& g, const Tensor<T>& x, T beta, T threshold) {
  return dispatch("softplus_backward", [&] { return cpu::softplus_backward(g, x, beta, threshold); }, g, x);
}
template <Floating T>
Tensor<T> gelu_backward(const Tensor<T>& g, const Tensor<T>& x, bool tanh_approximation) {
  return dispatch("gelu_backward", [&] { return cpu::gelu_backward(g, x, tanh_approximation); }, g, x);
}

}  // namespace metagrad::backend
