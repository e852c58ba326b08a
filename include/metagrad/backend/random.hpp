// SPDX-License-Identifier: MIT
// Backend facade, random family: dropout's mask, drawn on the device of the tensor it masks.
#pragma once
#include "metagrad/backend/cpu/random.hpp"
#include "metagrad/backend/dispatch.hpp"

namespace metagrad::backend {

/// A mask of x's shape: scale with probability keep, else 0, one draw of gen per element in order.
template <Floating T>
Tensor<T> dropout_mask(const Tensor<T>& x, double keep, T scale, Generator& gen) {
  return dispatch("dropout", [&] { return cpu::dropout_mask(x.shape(), keep, scale, gen); }, x);
}

}  // namespace metagrad::backend
