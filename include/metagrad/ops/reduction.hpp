// SPDX-License-Identifier: MIT
// Reductions over dims with keepdim: sum, mean. (Further reductions extend this family.)
#pragma once
#include <algorithm>
#include <vector>

#include "metagrad/ops/arithmetic.hpp"

namespace metagrad {

namespace detail {
/// Sorted, de-duplicated, normalized dims; empty `dims` means all of them.
inline std::vector<int> reduction_dims(std::span<const std::int64_t> dims, int rank, const char* op) {
  std::vector<int> out;
  if (dims.empty()) {
    for (int i = 0; i < rank; ++i) out.push_back(i);
    return out;
  }
  for (auto d : dims) out.push_back(normalize_dim(d, rank, op));
  std::sort(out.begin(), out.end());
  check(std::adjacent_find(out.begin(), out.end()) == out.end(), op, "a dim is repeated in the reduction dims");
  return out;
}

/// The shape x would have after reducing `dims` with keepdim=true.
inline Shape keepdim_shape(const Shape& s, const std::vector<int>& dims) {
  Shape out = s;
  for (int d : dims) out[d] = 1;
  return out;
}

inline Shape drop_dims(const Shape& s, const std::vector<int>& dims) {
  Shape out;
  for (int i = 0; i < s.rank(); ++i)
    if (std::find(dims.begin(), dims.end(), i) == dims.end()) out.push_back(s[i]);
  return out;
}
}  // namespace detail

/// Sum over `dims` (all when empty).
template <Floating T>
Tensor<T> sum(const Tensor<T>& x, std::vector<std::int64_t> dims = {}, bool keepdim = false) {
  const auto ds = detail::reduction_dims(dims, x.dim(), "sum");
  const Shape kept = detail::keepdim_shape(x.shape(), ds);
  Tensor<T> r = x.detach();
  if (x.numel() > 0 && kept.numel() == 1 && x.dim() > 0) {
    r = cpu::sum_dim(detail::view_as_shape(r, Shape{x.numel()}), 0, false);
  } else {
    for (auto it = ds.rbegin(); it != ds.rend(); ++it) r = cpu::sum_dim(r, *it, true);
  }
  r = detail::view_as_shape(r, keepdim ? kept : detail::drop_dims(x.shape(), ds));
  return record("sum", std::move(r), {x}, [kept](const Tensor<T>& g, BackwardContext<T>& c) {
    c.set(0, broadcast_to(reshape(g, kept), c.input(0).shape()));
  });
}

/// Mean over `dims` (all when empty).
template <Floating T>
Tensor<T> mean(const Tensor<T>& x, std::vector<std::int64_t> dims = {}, bool keepdim = false) {
  const auto ds = detail::reduction_dims(dims, x.dim(), "mean");
  std::int64_t count = 1;
  for (int d : ds) count *= x.shape()[d];
  check(count > 0, "mean", "mean over an empty extent of shape ", x.shape());
  return mul(sum(x, std::move(dims), keepdim), T(1) / static_cast<T>(count));
}

}  // namespace metagrad
