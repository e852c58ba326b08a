// SPDX-License-Identifier: MIT
// Backend facade, optimizer family: the fused in-place update steps of SGD and Adam, and the
// in-place pieces of gradient clipping (norms accumulated in double, scaling, clamping). The
// optimizers (optim/) call these, never cpu:: kernels. See dispatch.hpp.
#pragma once
#include "metagrad/backend/cpu/optim.hpp"
#include "metagrad/backend/dispatch.hpp"
#include "metagrad/backend/types.hpp"

namespace metagrad::backend {

/// One SGD step of p in place. momentum_buffer is null without momentum; a new buffer
/// (buffer_is_new) is filled by the step, not read.
template <Floating T>
void sgd_update(Tensor<T>& p, const Tensor<T>& g, Tensor<T>* momentum_buffer, bool buffer_is_new,
                const SgdCoefficients<T>& c) {
  if (momentum_buffer) common_device("SGD", p, *momentum_buffer);
  dispatch("SGD", [&] {
    T* buf = nullptr;
    if (momentum_buffer) buf = buffer_is_new ? momentum_buffer->fresh_data() : momentum_buffer->mutable_data("SGD");
    T* pp = p.mutable_data("SGD");
    cpu::sgd_step(pp, g.data(), buf, p.numel(), c);
  }, p, g);
}
/// One Adam step of p and its moments m, v in place.
template <Floating T>
void adam_update(Tensor<T>& p, const Tensor<T>& g, Tensor<T>& m, Tensor<T>& v, const AdamCoefficients<T>& c) {
  dispatch("Adam", [&] {
    T* pp = p.mutable_data("Adam");
    T* pm = m.mutable_data("Adam");
    T* pv = v.mutable_data("Adam");
    cpu::adam_step(pp, g.data(), pm, pv, p.numel(), c);
  }, p, g, m, v);
}

/// Σ x², accumulated in double.
template <Floating T>
double sum_of_squares(const Tensor<T>& x) {
  return dispatch("clip_grad_norm", [&] { return cpu::sum_of_squares(x.data(), x.numel()); }, x);
}
/// max |x| in double; NaN propagates.
template <Floating T>
double max_abs(const Tensor<T>& x) {
  return dispatch("clip_grad_norm", [&] { return cpu::max_abs(x.data(), x.numel()); }, x);
}
/// x *= s in place.
template <Floating T>
void scale_(Tensor<T>& x, T s) {
  dispatch("clip_grad_norm_", [&] { cpu::scale(x.mutable_data("clip_grad_norm_"), x.numel(), s); }, x);
}
/// x = clamp(x, lo, hi) in place; NaN stays NaN.
template <Floating T>
void clamp_(Tensor<T>& x, T lo, T hi) {
  dispatch("clip_grad_value_", [&] { cpu::clamp(x.mutable_data("clip_grad_value_"), x.numel(), lo, hi); }, x);
}

}  // namespace metagrad::backend
