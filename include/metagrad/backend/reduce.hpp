// SPDX-License-Identifier: MIT
// Backend facade, reduction family: sums, norms and extrema along one dim, and the one-hot mask
// of the positions an extremum picked. See dispatch.hpp.
#pragma once
#include "metagrad/backend/cpu/reduce.hpp"
#include "metagrad/backend/dispatch.hpp"
#include "metagrad/backend/geometry.hpp"

namespace metagrad::backend {

template <Element T>
Tensor<T> sum_dim(const Tensor<T>& x, int dim, bool keepdim) {
  return dispatch("sum", [&] { return cpu::sum_dim(x, dim, keepdim); }, x);
}
/// Σ x² along dim.
template <Element T>
Tensor<T> squared_norm_dim(const Tensor<T>& x, int dim, bool keepdim) {
  return dispatch("norm", [&] { return cpu::squared_norm_dim(x, dim, keepdim); }, x);
}
/// Σ |x| along dim.
template <Element T>
Tensor<T> abs_sum_dim(const Tensor<T>& x, int dim, bool keepdim) {
  return dispatch("norm", [&] { return cpu::abs_sum_dim(x, dim, keepdim); }, x);
}
/// The sum of every element (0 for an empty tensor).
template <Floating T>
T sum_all(const Tensor<T>& x) { return dispatch("sum", [&] { return cpu::sum_all(x); }, x); }

/// The maximum (IsMax) or minimum of x along dim into values (x's shape with dim kept as 1),
/// NaN winning, and the index of the first extremum into indices.
template <bool IsMax, Floating T>
void extreme_dim(const Tensor<T>& x, int dim, Tensor<T>& values, IndexTensor& indices) {
  const char* op = IsMax ? "max" : "min";
  dispatch(op, [&] { cpu::extreme_dim<IsMax>(x, dim, values.fresh_data(), indices.fresh_data()); }, x, values, indices);
}
/// The same without the indices.
template <bool IsMax, Floating T>
void extreme_dim(const Tensor<T>& x, int dim, Tensor<T>& values) {
  const char* op = IsMax ? "amax" : "amin";
  dispatch(op, [&] { cpu::extreme_dim<IsMax>(x, dim, values.fresh_data(), static_cast<std::int64_t*>(nullptr)); }, x,
           values);
}
/// A tensor of `shape`, 1 at the positions `indices` (dim kept as 1) pick along dim, else 0.
template <Floating T>
Tensor<T> index_mask(const IndexTensor& indices, const Shape& shape, int dim) {
  return dispatch("index_mask", [&] { return cpu::index_mask<T>(indices, shape, dim); }, indices);
}

}  // namespace metagrad::backend
