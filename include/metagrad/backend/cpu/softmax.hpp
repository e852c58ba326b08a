// SPDX-License-Identifier: MIT
// Fused kernels along one dim: softmax, log_softmax, logsumexp, their first-order backward
// passes, and the fused log_softmax + pick of cross_entropy. Each slice along the dim is handled
// by one task while it sits in cache: max, then the sum of exp(x - max), then the outputs.
// Subtracting the max keeps exp from overflowing; a row whose max is infinite is shifted by 0
// instead, so all -inf gives NaN (softmax) or -inf (logsumexp) rather than inf - inf.
// When the dim is not the last, a task takes a block of columns and works on whole rows of it.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

#include <Eigen/Core>

#include "metagrad/backend/cpu/elementwise.hpp"
#include "metagrad/backend/cpu/reduce.hpp"

namespace metagrad::cpu {

namespace detail {

inline constexpr std::int64_t kSliceGrain = 1 << 14;  // elements per task, about
inline constexpr std::int64_t kBlockWidth = 256;      // columns per task when dim is not last

/// Per-column accumulators of a block: at most kBlockWidth wide, so they live on the stack.
template <class T>
using BlockRow = Eigen::Array<T, Eigen::Dynamic, 1, Eigen::ColMajor, kBlockWidth, 1>;

/// Row k of a [extent, w] block whose rows are `stride` apart.
template <class T>
ConstArrayMap<T> block_row(const T* p, std::int64_t k, std::int64_t stride, std::int64_t w) {
  return ConstArrayMap<T>(p + k * stride, w);
}
template <class T>
ArrayMap<T> block_row(T* p, std::int64_t k, std::int64_t stride, std::int64_t w) {
  return ArrayMap<T>(p + k * stride, w);
}

/// The column-wise max of a block, one contiguous row at a time (vectorised).
template <class T>
BlockRow<T> block_max(const T* p, std::int64_t n, std::int64_t stride, std::int64_t w) {
  BlockRow<T> m = block_row(p, 0, stride, w);
  for (std::int64_t k = 1; k < n; ++k) m = m.max(block_row(p, k, stride, w));
  return m;
}

inline ReduceView slice_view(const Shape& s, int dim) { return s.rank() == 0 ? ReduceView{} : reduce_view(s, dim); }

/// Calls row(o) for each contiguous slice o (dim is last), or block(o, j, w) for columns
/// [j, j + w) of outer index o (dim is not last), in parallel. A block is walked row by row:
/// each row of it is contiguous, so every step is a vectorised operation on w values.
template <class Row, class Block>
void along_dim(const ReduceView& v, Row&& row, Block&& block) {
  const std::int64_t n = std::max<std::int64_t>(v.extent, 1);
  if (v.inner == 1) {
    parallel_for(v.outer, std::max<std::int64_t>(1, kSliceGrain / n), [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t o = b; o < e; ++o) row(o);
    });
    return;
  }
  const std::int64_t blocks = (v.inner + kBlockWidth - 1) / kBlockWidth;
  parallel_for(v.outer * blocks, std::max<std::int64_t>(1, kSliceGrain / (n * kBlockWidth)),
               [&](std::int64_t b, std::int64_t e) {
                 for (std::int64_t t = b; t < e; ++t) {
                   const std::int64_t o = t / blocks, j = (t % blocks) * kBlockWidth;
                   block(o, j, std::min(kBlockWidth, v.inner - j));
                 }
               });
}

template <class T>
T stable_shift(T max) { return std::isfinite(max) ? max : T(0); }

template <class T>
BlockRow<T> stable_shift(const BlockRow<T>& max) { return max.isFinite().select(max, BlockRow<T>::Zero(max.size())); }

/// A slice's shift (its max, or 0 where that is infinite) and Σ exp(x - shift): the pass that
/// log_softmax, logsumexp and cross_entropy share. The log is left to each caller, so logsumexp
/// can write shift + log straight into its output.
template <class S>
struct ShiftedExpSum {
  S shift, sum;
};

/// The pass over one contiguous slice.
template <class T>
ShiftedExpSum<T> shifted_exp_sum(const ConstArrayMap<T>& in) {
  const T shift = stable_shift(in.maxCoeff());
  return {shift, exp0(in - shift).sum()};
}

/// The pass over each column of an [n, w] block whose rows are `stride` apart, row by row.
template <class T>
ShiftedExpSum<BlockRow<T>> shifted_exp_sum(const T* in, std::int64_t n, std::int64_t stride, std::int64_t w) {
  ShiftedExpSum<BlockRow<T>> r{stable_shift<T>(block_max(in, n, stride, w)), BlockRow<T>::Zero(w)};
  for (std::int64_t k = 0; k < n; ++k) r.sum += exp0(block_row(in, k, stride, w) - r.shift);
  return r;
}

/// out = softmax of the contiguous row `in` (which may be out itself: the ops are coefficient-wise):
/// the one normalisation softmax_dim and softmax_last_with_bias share, so equal rows give equal bits.
template <class In, class T>
void softmax_row(const Eigen::ArrayBase<In>& in, ArrayMap<T>& out) {
  out = exp0(in - stable_shift(in.maxCoeff()));
  out /= out.sum();
}

}  // namespace detail

enum class SoftmaxKind { softmax, log_softmax };

/// softmax or log_softmax of x along `dim`.
template <SoftmaxKind Kind, Floating T>
Tensor<T> softmax_dim(const Tensor<T>& x, int dim) {
  auto out = Tensor<T>::empty(x.shape());
  if (x.numel() == 0) return out;
  const ReduceView v = detail::slice_view(x.shape(), dim);
  const T* px = x.data();
  T* po = out.fresh_data();
  const std::int64_t n = v.extent, stride = v.inner;
  detail::along_dim(
      v,
      [&](std::int64_t r) {
        const ConstArrayMap<T> in(px + r * n, n);
        ArrayMap<T> o(po + r * n, n);
        if constexpr (Kind == SoftmaxKind::softmax) {
          detail::softmax_row(in, o);
        } else {
          const auto s = detail::shifted_exp_sum(in);
          o = (in - s.shift) - std::log(s.sum);
        }
      },
      [&](std::int64_t r, std::int64_t j, std::int64_t w) {
        using detail::block_row;
        const T* in = px + r * n * stride + j;
        T* o = po + r * n * stride + j;
        if constexpr (Kind == SoftmaxKind::softmax) {
          const detail::BlockRow<T> shift = detail::stable_shift<T>(detail::block_max(in, n, stride, w));
          detail::BlockRow<T> total = detail::BlockRow<T>::Zero(w);
          for (std::int64_t k = 0; k < n; ++k) {
            auto ok = block_row(o, k, stride, w);
            ok = exp0(block_row(in, k, stride, w) - shift);
            total += ok;
          }
          for (std::int64_t k = 0; k < n; ++k) block_row(o, k, stride, w) /= total;
        } else {
          const auto s = detail::shifted_exp_sum(in, n, stride, w);
          const detail::BlockRow<T> log_sum = s.sum.log();
          for (std::int64_t k = 0; k < n; ++k) block_row(o, k, stride, w) = (block_row(in, k, stride, w) - s.shift) - log_sum;
        }
      });
  return out;
}

/// softmax(x + bias) along the last dim, bias broadcast to x's shape: each row's sum is formed in
/// the output row and normalised there while it sits in cache, so the sum never exists as a tensor.
template <Floating T>
Tensor<T> softmax_last_with_bias(const Tensor<T>& x, const Tensor<T>& bias) {
  auto out = Tensor<T>::empty(x.shape());
  if (x.numel() == 0) return out;
  const Shape& shape = x.shape();
  const std::int64_t n = shape[shape.rank() - 1];
  const std::array<std::array<std::int64_t, kMaxRank>, 2> strides{detail::broadcast_strides(bias.shape(), shape),
                                                                  shape.strides()};
  const bool bias_varies = strides[0][static_cast<std::size_t>(shape.rank() - 1)] != 0;
  const T *px = x.data(), *pb = bias.data();
  T* po = out.fresh_data();
  detail::for_each_row<2>(shape, strides, [&](const std::array<std::int64_t, 2>& off) {
    ArrayMap<T> o(po + off[1], n);
    const ConstArrayMap<T> in(px + off[1], n);
    if (bias_varies) o = in + ConstArrayMap<T>(pb + off[0], n);
    else o = in + pb[off[0]];
    detail::softmax_row(o, o);
  });
  return out;
}

/// log Σ exp(x) along `dim`; -inf over an empty extent.
template <Floating T>
Tensor<T> logsumexp_dim(const Tensor<T>& x, int dim, bool keepdim) {
  const ReduceView v = detail::slice_view(x.shape(), dim);
  auto out = Tensor<T>::empty(x.dim() == 0 ? Shape{} : reduced_shape(x.shape(), dim, keepdim));
  T* po = out.fresh_data();
  if (v.extent == 0) {
    std::fill_n(po, out.numel(), -std::numeric_limits<T>::infinity());
    return out;
  }
  const T* px = x.data();
  const std::int64_t n = v.extent, stride = v.inner;
  detail::along_dim(
      v,
      [&](std::int64_t r) {
        const auto s = detail::shifted_exp_sum(ConstArrayMap<T>(px + r * n, n));
        po[r] = s.shift + std::log(s.sum);
      },
      [&](std::int64_t r, std::int64_t j, std::int64_t w) {
        const auto s = detail::shifted_exp_sum(px + r * n * stride + j, n, stride, w);
        ArrayMap<T>(po + r * stride + j, w) = s.shift + s.sum.log();
      });
  return out;
}

/// The vector-Jacobian product of softmax (y its output): y * (g - Σ g*y) along `dim`.
template <Floating T>
Tensor<T> softmax_backward_dim(const Tensor<T>& g, const Tensor<T>& y, int dim) {
  auto out = Tensor<T>::empty(y.shape());
  if (y.numel() == 0) return out;
  const ReduceView v = detail::slice_view(y.shape(), dim);
  const T *pg = g.data(), *py = y.data();
  T* po = out.fresh_data();
  const std::int64_t n = v.extent, stride = v.inner;
  detail::along_dim(
      v,
      [&](std::int64_t r) {
        const ConstArrayMap<T> gr(pg + r * n, n), yr(py + r * n, n);
        ArrayMap<T>(po + r * n, n) = yr * (gr - (gr * yr).sum());
      },
      [&](std::int64_t r, std::int64_t j, std::int64_t w) {
        using detail::block_row;
        const std::int64_t at = r * n * stride + j;
        detail::BlockRow<T> dot = detail::BlockRow<T>::Zero(w);
        for (std::int64_t k = 0; k < n; ++k) dot += block_row(pg + at, k, stride, w) * block_row(py + at, k, stride, w);
        for (std::int64_t k = 0; k < n; ++k)
          block_row(po + at, k, stride, w) = block_row(py + at, k, stride, w) * (block_row(pg + at, k, stride, w) - dot);
      });
  return out;
}

/// The vector-Jacobian product of log_softmax (y its output): g - exp(y) * Σ g along `dim`.
template <Floating T>
Tensor<T> log_softmax_backward_dim(const Tensor<T>& g, const Tensor<T>& y, int dim) {
  auto out = Tensor<T>::empty(y.shape());
  if (y.numel() == 0) return out;
  const ReduceView v = detail::slice_view(y.shape(), dim);
  const T *pg = g.data(), *py = y.data();
  T* po = out.fresh_data();
  const std::int64_t n = v.extent, stride = v.inner;
  detail::along_dim(
      v,
      [&](std::int64_t r) {
        const ConstArrayMap<T> gr(pg + r * n, n), yr(py + r * n, n);
        ArrayMap<T>(po + r * n, n) = gr - exp0(yr) * gr.sum();
      },
      [&](std::int64_t r, std::int64_t j, std::int64_t w) {
        using detail::block_row;
        const std::int64_t at = r * n * stride + j;
        detail::BlockRow<T> total = detail::BlockRow<T>::Zero(w);
        for (std::int64_t k = 0; k < n; ++k) total += block_row(pg + at, k, stride, w);
        for (std::int64_t k = 0; k < n; ++k)
          block_row(po + at, k, stride, w) = block_row(pg + at, k, stride, w) - exp0(block_row(py + at, k, stride, w)) * total;
      });
  return out;
}

/// Per row i of logits x [N, C] with labels y: loss_i = -log_softmax(x)_{i, y_i}, computed as
/// log Σ exp(x_i - shift_i) - (x_{i, y_i} - shift_i). shift and log_sum are kept for the backward
/// pass, which rebuilds softmax from them without another max and sum. Labels must be in range.
template <Floating T>
void cross_entropy_rows(const Tensor<T>& x, const std::int64_t* labels, T* loss, T* shift, T* log_sum) {
  const std::int64_t n = x.shape()[0], c = x.shape()[1];
  const T* px = x.data();
  parallel_for(n, std::max<std::int64_t>(1, detail::kSliceGrain / std::max<std::int64_t>(c, 1)),
               [&](std::int64_t b, std::int64_t e) {
                 for (std::int64_t i = b; i < e; ++i) {
                   const ConstArrayMap<T> row(px + i * c, c);
                   const auto s = detail::shifted_exp_sum(row);
                   shift[i] = s.shift;
                   log_sum[i] = std::log(s.sum);
                   loss[i] = log_sum[i] - (row[labels[i]] - shift[i]);
                 }
               });
}

/// d loss_i / d x_i scaled by scale_i = factor * g[i * g_stride]:
/// scale_i * (softmax(x_i) - onehot(y_i)), with softmax rebuilt from cross_entropy_rows' shift and log_sum.
template <Floating T>
Tensor<T> cross_entropy_backward(const Tensor<T>& x, const std::int64_t* labels, const T* shift, const T* log_sum,
                                 const T* g, std::int64_t g_stride, T factor) {
  const std::int64_t n = x.shape()[0], c = x.shape()[1];
  auto out = Tensor<T>::empty(x.shape());
  const T* px = x.data();
  T* po = out.fresh_data();
  parallel_for(n, std::max<std::int64_t>(1, detail::kSliceGrain / std::max<std::int64_t>(c, 1)),
               [&](std::int64_t b, std::int64_t e) {
                 for (std::int64_t i = b; i < e; ++i) {
                   const T scale = factor * g[i * g_stride];
                   ArrayMap<T> o(po + i * c, c);
                   o = exp0((ConstArrayMap<T>(px + i * c, c) - shift[i]) - log_sum[i]) * scale;
                   o[labels[i]] -= scale;
                 }
               });
  return out;
}

/// loss_i = -logp_{i, y_i} for log-probabilities [N, C]. Labels must be in range.
template <Floating T>
void nll_rows(const Tensor<T>& logp, const std::int64_t* labels, T* loss) {
  const std::int64_t n = logp.shape()[0], c = logp.shape()[1];
  const T* p = logp.data();
  for (std::int64_t i = 0; i < n; ++i) loss[i] = -p[i * c + labels[i]];
}

}  // namespace metagrad::cpu
