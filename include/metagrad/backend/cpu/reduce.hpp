// SPDX-License-Identifier: MIT
// Reductions along one dim. A tensor is viewed as [outer, extent, inner]: with inner == 1 each
// output is a contiguous run (Eigen rowwise), otherwise whole inner rows are combined at once.
// Also: max/min with the index of the first extreme (NaN wins, as in PyTorch), the one-hot mask
// that routes a gradient back to those indices, and the all-element sum of f(a, b) behind losses.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "metagrad/backend/cpu/parallel.hpp"
#include "metagrad/backend/geometry.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::cpu {

using backend::reduce_view;
using backend::reduced_shape;
using backend::ReduceView;

/// Reduces along `dim` with Eigen's reducers: `rows(M)` maps a row-major [outer, extent] matrix
/// to a column of results; `cols(M)` maps an [extent, inner] matrix to a row of results.
template <Element T, class RowReducer, class ColReducer>
Tensor<T> reduce_dim(const Tensor<T>& x, int dim, bool keepdim, RowReducer&& rows, ColReducer&& cols) {
  const ReduceView v = reduce_view(x.shape(), dim);
  auto out = Tensor<T>::empty(reduced_shape(x.shape(), dim, keepdim));
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const T* px = x.data();
  T* po = out.fresh_data();
  if (v.inner == 1) {
    parallel_for(v.outer, std::max<std::int64_t>(1, (1 << 14) / std::max<std::int64_t>(v.extent, 1)),
                 [&](std::int64_t b, std::int64_t e) {
                   Eigen::Map<const Mat> m(px + b * v.extent, e - b, v.extent);
                   Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>(po + b, e - b) = rows(m);
                 });
  } else {
    // A grain by slab size: a thread team for a few tiny slabs costs far more than it saves.
    parallel_for(v.outer, std::max<std::int64_t>(1, (1 << 14) / std::max<std::int64_t>(v.extent * v.inner, 1)),
                 [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t o = b; o < e; ++o) {
        Eigen::Map<const Mat> m(px + o * v.extent * v.inner, v.extent, v.inner);
        Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(po + o * v.inner, v.inner) = cols(m);
      }
    });
  }
  return out;
}

template <Element T>
Tensor<T> sum_dim(const Tensor<T>& x, int dim, bool keepdim) {
  return reduce_dim(
      x, dim, keepdim, [](const auto& m) { return m.rowwise().sum(); }, [](const auto& m) { return m.colwise().sum(); });
}

/// Sum of squares along `dim` (the square of the L2 norm).
template <Element T>
Tensor<T> squared_norm_dim(const Tensor<T>& x, int dim, bool keepdim) {
  return reduce_dim(
      x, dim, keepdim, [](const auto& m) { return m.rowwise().squaredNorm(); },
      [](const auto& m) { return m.colwise().squaredNorm(); });
}

/// Sum of absolute values along `dim` (the L1 norm).
template <Element T>
Tensor<T> abs_sum_dim(const Tensor<T>& x, int dim, bool keepdim) {
  return reduce_dim(
      x, dim, keepdim, [](const auto& m) { return m.rowwise().template lpNorm<1>(); },
      [](const auto& m) { return m.colwise().template lpNorm<1>(); });
}

namespace detail {
/// Max (IsMax) or min of a run that propagates NaN. Eigen's NaN-propagating reduction is 3x
/// slower than its plain one, so that runs only when x - x shows a NaN or an infinity.
template <bool IsMax, class Run>
auto nan_extreme(const Run& run) {
  const auto fast = IsMax ? run.maxCoeff() : run.minCoeff();
  if (!std::isnan((run - run).sum())) [[likely]]
    return fast;
  if constexpr (IsMax) return run.template maxCoeff<Eigen::PropagateNaN>();
  else return run.template minCoeff<Eigen::PropagateNaN>();
}
/// a and b combined coefficient-wise the same way.
template <bool IsMax, class T, class A, class B>
auto nan_extreme(const A& a, const B& b) {
  if constexpr (IsMax) return a.binaryExpr(b, Eigen::internal::scalar_max_op<T, T, Eigen::PropagateNaN>());
  else return a.binaryExpr(b, Eigen::internal::scalar_min_op<T, T, Eigen::PropagateNaN>());
}
/// Whether v is `best`, the extreme found (a NaN best matches the first NaN).
template <class T>
bool is_extreme(T v, T best) {
  return v == best || (std::isnan(best) && std::isnan(v));
}
}  // namespace detail

/// Max (IsMax) or min along `dim`, NaN-propagating as in PyTorch, and, when `indices` is not
/// null, the index of the first element equal to it. A vectorised pass finds the value; a scan
/// finds its first position. The extent must be non-zero.
template <bool IsMax, Floating T>
void extreme_dim(const Tensor<T>& x, int dim, T* values, std::int64_t* indices) {
  const ReduceView v = x.dim() == 0 ? ReduceView{} : reduce_view(x.shape(), dim);
  const T* px = x.data();
  using Run = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
  if (v.inner == 1) {
    parallel_for(v.outer, std::max<std::int64_t>(1, (1 << 14) / std::max<std::int64_t>(v.extent, 1)),
                 [&](std::int64_t b, std::int64_t e) {
                   for (std::int64_t o = b; o < e; ++o) {
                     const T* row = px + o * v.extent;
                     const T best = detail::nan_extreme<IsMax>(Run(row, v.extent));
                     values[o] = best;
                     if (!indices) continue;
                     std::int64_t at = 0;
                     while (!detail::is_extreme(row[at], best)) ++at;
                     indices[o] = at;
                   }
                 });
    return;
  }
  // Whole inner rows at a time, so the reads stay contiguous.
  parallel_for(v.outer, std::max<std::int64_t>(1, (1 << 14) / std::max<std::int64_t>(v.extent * v.inner, 1)),
               [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t o = b; o < e; ++o) {
      const T* slab = px + o * v.extent * v.inner;
      Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> best(values + o * v.inner, v.inner);
      best = Run(slab, v.inner);
      for (std::int64_t k = 1; k < v.extent; ++k) best = detail::nan_extreme<IsMax, T>(best, Run(slab + k * v.inner, v.inner));
      if (!indices) continue;
      std::int64_t* at = indices + o * v.inner;
      std::fill_n(at, v.inner, -1);
      std::int64_t found = 0;
      for (std::int64_t k = 0; k < v.extent && found < v.inner; ++k) {
        const T* row = slab + k * v.inner;
        for (std::int64_t i = 0; i < v.inner; ++i)
          if (at[i] < 0 && detail::is_extreme(row[i], best[i])) at[i] = k, ++found;
      }
    }
  });
}

/// A tensor of `shape` that is 1 where the position along `dim` equals `indices` (shaped like
/// `shape` with `dim` of extent 1) and 0 elsewhere: the mask that sends a gradient to an argmax.
template <Floating T>
Tensor<T> index_mask(const Tensor<std::int64_t>& indices, const Shape& shape, int dim) {
  const ReduceView v = shape.rank() == 0 ? ReduceView{} : reduce_view(shape, dim);
  auto out = Tensor<T>::empty(shape);
  T* po = out.fresh_data();
  const std::int64_t* pi = indices.data();
  std::fill_n(po, out.numel(), T(0));
  parallel_for(v.outer, std::max<std::int64_t>(1, (1 << 14) / std::max<std::int64_t>(v.extent * v.inner, 1)),
               [&](std::int64_t b, std::int64_t e) {
                 for (std::int64_t o = b; o < e; ++o)
                   for (std::int64_t i = 0; i < v.inner; ++i)
                     po[(o * v.extent + pi[o * v.inner + i]) * v.inner + i] = T(1);
               });
  return out;
}

/// The sum over all elements of f(a, b) (Eigen array expressions, same shapes). Chunks have a
/// fixed size and their partial sums are added in order, so the result does not depend on the
/// number of threads.
template <Floating T, class F>
T sum_binary(const Tensor<T>& a, const Tensor<T>& b, F&& f) {
  constexpr std::int64_t chunk = 1 << 15;
  const std::int64_t n = a.numel(), chunks = (n + chunk - 1) / chunk;
  const T *pa = a.data(), *pb = b.data();
  auto partial_sum = [&](std::int64_t k) {
    const std::int64_t s = k * chunk, len = std::min(chunk, n - s);
    using Map = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
    return f(Map(pa + s, len), Map(pb + s, len)).sum();
  };
  if (chunks <= 1) return n ? partial_sum(0) : T(0);
  std::vector<T> partial(static_cast<std::size_t>(chunks));
  parallel_for(chunks, 2, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t k = b; k < e; ++k) partial[static_cast<std::size_t>(k)] = partial_sum(k);
  });
  T total = 0;
  for (T p : partial) total += p;
  return total;
}

}  // namespace metagrad::cpu

namespace metagrad::cpu {
/// The sum of every element of x (0 for an empty tensor), as Eigen adds up one contiguous run.
template <Floating T>
T sum_all(const Tensor<T>& x) {
  return x.numel() ? Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(x.data(), x.numel()).sum() : T(0);
}
}  // namespace metagrad::cpu
