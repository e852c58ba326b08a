// SPDX-License-Identifier: MIT
// Index kernels: index_select / index_add (whole slices picked or accumulated along one dim),
// gather / scatter_add (torch semantics: one index per element), one_hot. Indices arrive already
// validated by the ops; the kernels only move data. Accumulating kernels split work so that no
// two threads ever add into the same element (repeated indices are allowed and summed).
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>

#include <Eigen/Core>

#include "metagrad/backend/cpu/copy.hpp"

namespace metagrad::cpu {

/// The smallest and largest of n indices (n > 0), vectorised.
inline std::pair<std::int64_t, std::int64_t> index_min_max(const std::int64_t* idx, std::int64_t n) {
  const Eigen::Map<const Eigen::Array<std::int64_t, Eigen::Dynamic, 1>> m(idx, n);
  return {m.minCoeff(), m.maxCoeff()};
}

/// out[o, j, :] = x[o, idx[j], :] for x viewed as `v` and j < k.
template <Element T>
void index_select(const T* x, DimView v, const std::int64_t* idx, std::int64_t k, T* out) {
  if (v.outer == 1)
    detail::copy_runs(out, k, v.inner, [&](std::int64_t j) { return x + idx[j] * v.inner; });
  else
    detail::copy_runs(out, v.outer * k, v.inner, [&](std::int64_t j) { return x + ((j / k) * v.extent + idx[j % k]) * v.inner; });
}

/// out[o, idx[j], :] += src[o, j, :] for out viewed as `v` and j < k. Threads own disjoint
/// [o, column range] blocks, so repeated indices never race; with few outer slices (an embedding
/// table's gradient) the columns are what gets split.
template <Element T>
void index_add(T* out, DimView v, const std::int64_t* idx, std::int64_t k, const T* src) {
  if (v.outer * v.inner == 0 || k == 0) return;
  const std::int64_t threads = num_threads();
  const std::int64_t width = v.outer >= threads ? v.inner : std::max<std::int64_t>(16, (v.inner + threads - 1) / threads);
  const std::int64_t col_blocks = (v.inner + width - 1) / width;
  const std::int64_t work = k * std::min(width, v.inner);
  using Row = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  using ConstRow = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
  parallel_for(v.outer * col_blocks, std::max<std::int64_t>(1, kCopyGrain / work), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t u = b; u < e; ++u) {
      const std::int64_t o = u / col_blocks, c0 = (u % col_blocks) * width, n = std::min(width, v.inner - c0);
      T* base = out + o * v.extent * v.inner + c0;
      const T* s = src + o * k * v.inner + c0;
      if (n == 1) {
        for (std::int64_t j = 0; j < k; ++j) base[idx[j] * v.inner] += s[j * v.inner];
      } else {
        for (std::int64_t j = 0; j < k; ++j) Row(base + idx[j] * v.inner, n) += ConstRow(s + j * v.inner, n);
      }
    }
  });
}

namespace detail {
/// Strides for walking an index tensor of shape `idx` row by row: [0] steps through idx (and any
/// tensor of its shape), [1] through a tensor of shape `x` at the same coordinates, except along
/// `dim`, whose coordinate is the index value instead.
inline StrideSet<2> index_walk_strides(const Shape& idx, const Shape& x, int dim) {
  StrideSet<2> st{};
  st[0] = idx.strides();
  st[1] = x.strides();
  st[1][static_cast<std::size_t>(dim)] = 0;
  return st;
}
}  // namespace detail

/// out[i][j][k] = x[i][idx[i][j][k]][k] (for dim 1; likewise for any dim); out has idx's shape.
template <Element T>
void gather(const T* x, const Shape& x_shape, int dim, const std::int64_t* idx, const Shape& idx_shape, T* out) {
  const std::int64_t n = idx_shape.numel();
  if (n == 0) return;
  const int last = idx_shape.rank() - 1;
  const std::int64_t run = idx_shape[last], sd = x_shape.strides()[static_cast<std::size_t>(dim)];
  const auto st = detail::index_walk_strides(idx_shape, x_shape, dim);
  parallel_for(n / run, std::max<std::int64_t>(1, kCopyGrain / run), [&](std::int64_t b, std::int64_t e) {
    detail::walk_rows<2>(idx_shape, st, b, e, [&](const std::array<std::int64_t, 2>& off) {
      const std::int64_t* ix = idx + off[0];
      const T* xs = x + off[1];
      T* o = out + off[0];
      if (dim == last) {
        for (std::int64_t j = 0; j < run; ++j) o[j] = xs[ix[j]];
      } else {
        for (std::int64_t j = 0; j < run; ++j) o[j] = xs[j + ix[j] * sd];
      }
    });
  });
}

/// out[i][idx[i][j][k]][k] += src[i][j][k] (for dim 1; likewise for any dim); src has idx's shape.
template <Element T>
void scatter_add(T* out, const Shape& out_shape, int dim, const std::int64_t* idx, const Shape& idx_shape, const T* src) {
  const std::int64_t n = idx_shape.numel();
  if (n == 0) return;
  const int last = idx_shape.rank() - 1;
  const std::int64_t run = idx_shape[last], sd = out_shape.strides()[static_cast<std::size_t>(dim)];
  const auto st = detail::index_walk_strides(idx_shape, out_shape, dim);
  // Two rows can hit the same output element only when they differ in their coordinate along
  // `dim`; a slab of rows that share the coordinates before `dim` therefore runs on one thread.
  std::int64_t slab = 1;
  for (int d = dim; d < last; ++d) slab *= idx_shape[d];
  const std::int64_t slabs = n / run / slab;
  parallel_for(slabs, std::max<std::int64_t>(1, kCopyGrain / (slab * run)), [&](std::int64_t b, std::int64_t e) {
    detail::walk_rows<2>(idx_shape, st, b * slab, e * slab, [&](const std::array<std::int64_t, 2>& off) {
      const std::int64_t* ix = idx + off[0];
      const T* s = src + off[0];
      T* o = out + off[1];
      if (dim == last) {
        for (std::int64_t j = 0; j < run; ++j) o[ix[j]] += s[j];
      } else {
        for (std::int64_t j = 0; j < run; ++j) o[j + ix[j] * sd] += s[j];
      }
    });
  });
}

/// out[i, labels[i]] = 1 for out zero-filled of shape [n, classes].
template <Element T>
void one_hot(const std::int64_t* labels, std::int64_t n, std::int64_t classes, T* out) {
  detail::fill_zero(out, n * classes);
  for (std::int64_t i = 0; i < n; ++i) out[i * classes + labels[i]] = T(1);
}

}  // namespace metagrad::cpu
