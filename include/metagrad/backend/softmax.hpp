// SPDX-License-Identifier: MIT
// Backend facade, softmax family: softmax, log_softmax and logsumexp along a dim, their fused
// backward kernels, and the fused rows of cross_entropy and nll_loss. See dispatch.hpp.
#pragma once
#include "metagrad/backend/cpu/softmax.hpp"
#include "metagrad/backend/dispatch.hpp"

namespace metagrad::backend {

template <Floating T>
Tensor<T> softmax(const Tensor<T>& x, int dim) {
  return dispatch("softmax", [&] { return cpu::softmax_dim<cpu::SoftmaxKind::softmax>(x, dim); }, x);
}
/// softmax(x + bias) along the last dim; bias must broadcast to x's shape.
template <Floating T>
Tensor<T> softmax_last_with_bias(const Tensor<T>& x, const Tensor<T>& bias) {
  return dispatch("softmax_with_bias", [&] { return cpu::softmax_last_with_bias(x, bias); }, x, bias);
}
template <Floating T>
Tensor<T> log_softmax(const Tensor<T>& x, int dim) {
  return dispatch("log_softmax", [&] { return cpu::softmax_dim<cpu::SoftmaxKind::log_softmax>(x, dim); }, x);
}
template <Floating T>
Tensor<T> logsumexp_dim(const Tensor<T>& x, int dim, bool keepdim) {
  return dispatch("logsumexp", [&] { return cpu::logsumexp_dim(x, dim, keepdim); }, x);
}
/// y * (g - Σ g y) along dim, for y = softmax(x).
template <Floating T>
Tensor<T> softmax_backward(const Tensor<T>& g, const Tensor<T>& y, int dim) {
  return dispatch("softmax_backward", [&] { return cpu::softmax_backward_dim(g, y, dim); }, g, y);
}
/// g - exp(y) Σ g along dim, for y = log_softmax(x).
template <Floating T>
Tensor<T> log_softmax_backward(const Tensor<T>& g, const Tensor<T>& y, int dim) {
  return dispatch("log_softmax_backward", [&] { return cpu::log_softmax_backward_dim(g, y, dim); }, g, y);
}

/// Per row of logits [N, C]: the loss -log_softmax(x)_{i, y_i}, and the shift and log-sum the
/// backward kernel rebuilds softmax from. Labels must be in range.
template <Floating T>
void cross_entropy_rows(const Tensor<T>& logits, const IndexTensor& labels, Tensor<T>& loss, Tensor<T>& shift,
                        Tensor<T>& log_sum) {
  dispatch("cross_entropy", [&] {
    cpu::cross_entropy_rows(logits, labels.data(), loss.fresh_data(), shift.fresh_data(), log_sum.fresh_data());
  }, logits, labels, loss, shift, log_sum);
}
/// factor * g_i * (softmax(x_i) - onehot(y_i)), g_i read with stride g_stride (0: one scalar).
template <Floating T>
Tensor<T> cross_entropy_backward(const Tensor<T>& x, const IndexTensor& labels, const Tensor<T>& shift,
                                 const Tensor<T>& log_sum, const Tensor<T>& g, std::int64_t g_stride, T factor) {
  return dispatch("cross_entropy_backward", [&] {
    return cpu::cross_entropy_backward(x, labels.data(), shift.data(), log_sum.data(), g.data(), g_stride, factor);
  }, x, labels, shift, log_sum, g);
}
/// loss_i = -logp_{i, y_i}. Labels must be in range.
template <Floating T>
void nll_rows(const Tensor<T>& logp, const IndexTensor& labels, Tensor<T>& loss) {
  dispatch("nll_loss", [&] { cpu::nll_rows(logp, labels.data(), loss.fresh_data()); }, logp, labels, loss);
}

}  // namespace metagrad::backend
