// SPDX-License-Identifier: MIT
// Backend facade, pointwise-loss family: the element-wise terms of mse, l1, kl_div and binary
// cross entropy with logits, or their sum without forming them. See dispatch.hpp.
#pragma once
#include "metagrad/backend/cpu/binary.hpp"
#include "metagrad/backend/dispatch.hpp"
#include "metagrad/backend/types.hpp"

namespace metagrad::backend {

/// The per-element terms of loss K (input and target of one shape).
template <PointwiseLoss K, Floating T>
Tensor<T> pointwise_loss(const char* op, const Tensor<T>& input, const Tensor<T>& target) {
  return dispatch(op, [&] { return cpu::pointwise_loss<K>(input, target); }, input, target);
}
/// Their sum; chunked so that it does not depend on the number of threads.
template <PointwiseLoss K, Floating T>
T pointwise_loss_sum(const char* op, const Tensor<T>& input, const Tensor<T>& target) {
  return dispatch(op, [&] { return cpu::pointwise_loss_sum<K>(input, target); }, input, target);
}

}  // namespace metagrad::backend
