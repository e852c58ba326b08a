// SPDX-License-Identifier: MIT
// Backend facade, sparsemax family: the Euclidean projection onto the simplex along one dim.
#pragma once
#include "metagrad/backend/cpu/sparsemax.hpp"
#include "metagrad/backend/dispatch.hpp"
#include "metagrad/backend/geometry.hpp"

namespace metagrad::backend {

/// out = sparsemax(x) along dim.
template <Floating T>
void sparsemax(const Tensor<T>& x, int dim, Tensor<T>& out) {
  dispatch("sparsemax", [&] { cpu::sparsemax_dim(x.data(), out.fresh_data(), reduce_view(x.shape(), dim)); }, x, out);
}

}  // namespace metagrad::backend
