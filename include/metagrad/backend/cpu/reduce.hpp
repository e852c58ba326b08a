// SPDX-License-Identifier: MIT
// Reductions along one dim. A tensor is viewed as [outer, extent, inner]: with inner == 1 each
// output is a contiguous run (Eigen rowwise), otherwise whole inner rows are combined at once.
#pragma once
#include <cstdint>

#include <Eigen/Core>

#include "metagrad/backend/cpu/parallel.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::cpu {

struct ReduceView {
  std::int64_t outer = 1, extent = 1, inner = 1;
};

inline ReduceView reduce_view(const Shape& s, int dim) {
  ReduceView v;
  for (int i = 0; i < dim; ++i) v.outer *= s[i];
  v.extent = s[dim];
  for (int i = dim + 1; i < s.rank(); ++i) v.inner *= s[i];
  return v;
}

/// Shape of a reduction along `dim`: the dim becomes 1 with keepdim, else disappears.
inline Shape reduced_shape(const Shape& s, int dim, bool keepdim) {
  Shape out;
  for (int i = 0; i < s.rank(); ++i) {
    if (i != dim) out.push_back(s[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

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
    parallel_for(v.outer, 1, [&](std::int64_t b, std::int64_t e) {
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

}  // namespace metagrad::cpu
