// SPDX-License-Identifier: MIT
// Random CPU kernels. One draw per element, in order and on one thread, so a seed reproduces the
// result exactly whatever the thread count.
#pragma once
#include <cstdint>

#include "metagrad/core/random.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::cpu {

/// A tensor of `shape`: scale with probability keep, else 0 (one gen.uniform() per element).
template <Floating T>
Tensor<T> dropout_mask(const Shape& shape, double keep, T scale, Generator& gen) {
  auto mask = Tensor<T>::empty(shape);
  T* m = mask.fresh_data();
  for (std::int64_t i = 0; i < mask.numel(); ++i) m[i] = gen.uniform() < keep ? scale : T(0);
  return mask;
}

}  // namespace metagrad::cpu
