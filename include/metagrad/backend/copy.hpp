// SPDX-License-Identifier: MIT
// Backend facade, copy family: the kernels behind the shape ops, which move elements without
// arithmetic: slices and their zero-padded adjoint, permutations, concatenation, flips,
// broadcasting and plain copies. Each writes a preallocated output. See dispatch.hpp.
#pragma once
#include <array>
#include <span>
#include <vector>

#include "metagrad/backend/cpu/copy.hpp"
#include "metagrad/backend/cpu/elementwise.hpp"
#include "metagrad/backend/dispatch.hpp"
#include "metagrad/backend/geometry.hpp"

namespace metagrad::backend {

/// out = x[..., start : start + len * step : step, ...] along dim.
template <Element T>
void slice_copy(const Tensor<T>& x, int dim, std::int64_t start, std::int64_t step, std::int64_t len, Tensor<T>& out) {
  dispatch("slice", [&] { cpu::slice_copy(x.data(), out.fresh_data(), dim_view(x.shape(), dim), start, step, len); }, x,
           out);
}
/// The adjoint of slice_copy: g placed at the slice's positions of out, zeros elsewhere.
template <Element T>
void slice_pad(const Tensor<T>& g, int dim, std::int64_t start, std::int64_t step, std::int64_t len, Tensor<T>& out) {
  dispatch("slice_backward", [&] {
    cpu::slice_pad(g.data(), out.fresh_data(), dim_view(out.shape(), dim), start, step, len);
  }, g, out);
}
/// out = x with its dims reordered by perm.
template <Element T>
void permute_copy(const Tensor<T>& x, std::span<const int> perm, Tensor<T>& out) {
  dispatch("permute", [&] { cpu::permute_copy(x.data(), out.fresh_data(), x.shape(), perm); }, x, out);
}
/// out = xs concatenated along dim; offsets[i] is where xs[i] starts along it.
template <Element T>
void concat_copy(const std::vector<Tensor<T>>& xs, int dim, std::span<const std::int64_t> offsets, Tensor<T>& out) {
  const Device d = out.device();
  for (const auto& x : xs) common_device("cat", x, out);
  on_device("cat", d, [&] {
    const auto v = dim_view(out.shape(), dim);
    std::vector<const T*> pieces;
    pieces.reserve(xs.size());
    for (const auto& x : xs) pieces.push_back(x.data());
    cpu::concat_copy<T>(pieces, offsets, out.fresh_data(), v.outer, v.inner);
  });
}
/// out = x reversed along the dims marked in flip.
template <Element T>
void flip_copy(const Tensor<T>& x, const std::array<bool, kMaxRank>& flip, Tensor<T>& out) {
  dispatch("flip", [&] { cpu::flip_copy(x.data(), out.fresh_data(), x.shape(), flip); }, x, out);
}
/// A contiguous copy of x broadcast to shape.
template <Element T>
Tensor<T> broadcast_copy(const Tensor<T>& x, const Shape& shape) {
  return dispatch("broadcast_to", [&] { return cpu::broadcast_copy(x, shape); }, x);
}
/// out = x, element for element (same number of elements).
template <Element T>
void copy(const Tensor<T>& x, Tensor<T>& out) {
  dispatch("clone", [&] { cpu::detail::copy_runs(out.fresh_data(), 1, x.numel(), [&](std::int64_t) { return x.data(); }); },
           x, out);
}

}  // namespace metagrad::backend
