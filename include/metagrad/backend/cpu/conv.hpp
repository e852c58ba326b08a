// SPDX-License-Identifier: MIT
// 2-D convolution kernels on NCHW buffers: im2col + GEMM for the forward pass and the weight
// gradient, GEMM + col2im for the input gradient. The batch is split across threads, and each
// thread lowers a chunk of samples into one cache-sized column matrix; every sample's GEMM then
// reads (or writes) its own columns of it in place and its NCHW block directly, which measured
// faster than one wide GEMM per chunk plus restaging NCHW planes around it. With fewer samples
// than threads, the GEMM takes the threads instead. The *_lowered kernels read a whole batch
// lowered once by lower_batch, for callers that reuse one lowering for several products.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "metagrad/backend/cpu/gemm.hpp"
#include "metagrad/backend/geometry.hpp"

namespace metagrad::cpu {

using backend::ConvAxis;
using backend::ConvGeometry;

namespace detail {
/// Elements in one 256-bit vector move.
template <class T>
inline constexpr std::int64_t kRowBlock = 32 / sizeof(T);

/// Copies n < 2 * B elements with at most two fixed-size (possibly overlapping) moves per size
/// class, so that the compiler emits vector moves instead of a call.
template <class T, std::int64_t B>
void copy_short(const T* src, std::int64_t n, T* dst) {
  if (n >= B) {
    std::memcpy(dst, src, B * sizeof(T));
    std::memcpy(dst + n - B, src + n - B, B * sizeof(T));
  } else if constexpr (B > 1) {
    copy_short<T, B / 2>(src, n, dst);
  }
}

/// dst[0, n) = src[0, n). The rows im2col copies are short (often 8-24 elements): fixed-size
/// moves, the last one overlapping, beat a call to memmove (which GCC makes of a plain loop)
/// and Eigen's dynamic-size copy with its alignment peeling.
template <class T>
void copy_row(const T* src, std::int64_t n, T* dst) {
  constexpr std::int64_t B = kRowBlock<T>;
  if (n < 2 * B) return copy_short<T, B>(src, n, dst);
  std::int64_t i = 0;
  for (; i + B <= n; i += B) std::memcpy(dst + i, src + i, B * sizeof(T));
  if (i < n) std::memcpy(dst + n - B, src + n - B, B * sizeof(T));
}

/// dst[0, n) += src[0, n) in fixed-size blocks (the two rows never overlap).
template <class T>
void add_row(const T* src, std::int64_t n, T* dst) {
  constexpr std::int64_t B = kRowBlock<T>;
  using Block = Eigen::Array<T, B, 1>;
  std::int64_t i = 0;
  for (; i + B <= n; i += B) Eigen::Map<Block>(dst + i) += Eigen::Map<const Block>(src + i);
  for (; i < n; ++i) dst[i] += src[i];
}
}  // namespace detail

/// Lowers one sample x [C, H, W] into the columns of `col`, a [patch, positions] block of a
/// row-major matrix with leading dimension ld. Taps that fall into the padding read zero.
template <class T>
void im2col(const T* x, const ConvGeometry& g, T* col, std::int64_t ld) {
  const std::int64_t plane = g.h.in * g.w.in, ow_count = g.w.out;
  T* row = col;
  for (std::int64_t c = 0; c < g.in_channels; ++c) {
    for (std::int64_t i = 0; i < g.h.kernel; ++i) {
      const auto [h0, h1] = g.h.valid_outputs(i);
      for (std::int64_t j = 0; j < g.w.kernel; ++j, row += ld) {
        const auto [w0, w1] = g.w.valid_outputs(j);
        T* dst = row;
        std::fill_n(dst, h0 * ow_count, T(0));
        for (std::int64_t oh = h0; oh < h1; ++oh) {
          T* d = dst + oh * ow_count;
          const T* src = x + c * plane + g.h.input_of(oh, i) * g.w.in;
          if (w0 > 0) std::fill_n(d, w0, T(0));  // padding only; skips a memset call per row
          if (g.w.stride == 1) {
            detail::copy_row(src + g.w.input_of(w0, j), w1 - w0, d + w0);
          } else {
            for (std::int64_t ow = w0; ow < w1; ++ow) d[ow] = src[g.w.input_of(ow, j)];
          }
          if (w1 < ow_count) std::fill(d + w1, d + ow_count, T(0));
        }
        std::fill(dst + h1 * ow_count, dst + g.h.out * ow_count, T(0));
      }
    }
  }
}

/// The adjoint of im2col: adds the columns of `col` back onto sample dx [C, H, W].
template <class T>
void col2im(const T* col, std::int64_t ld, const ConvGeometry& g, T* dx) {
  const std::int64_t plane = g.h.in * g.w.in, ow_count = g.w.out;
  const T* row = col;
  for (std::int64_t c = 0; c < g.in_channels; ++c) {
    for (std::int64_t i = 0; i < g.h.kernel; ++i) {
      const auto [h0, h1] = g.h.valid_outputs(i);
      for (std::int64_t j = 0; j < g.w.kernel; ++j, row += ld) {
        const auto [w0, w1] = g.w.valid_outputs(j);
        for (std::int64_t oh = h0; oh < h1; ++oh) {
          const T* s = row + oh * ow_count;
          T* dst = dx + c * plane + g.h.input_of(oh, i) * g.w.in;
          if (g.w.stride == 1) {
            detail::add_row(s + w0, w1 - w0, dst + g.w.input_of(w0, j));
          } else {
            for (std::int64_t ow = w0; ow < w1; ++ow) dst[g.w.input_of(ow, j)] += s[ow];
          }
        }
      }
    }
  }
}

namespace detail {
/// A chunk of samples is lowered together until its column matrix is about this wide...
inline constexpr std::int64_t kConvTargetColumns = 512;
/// ...unless the column matrix would exceed this many elements (it should stay cache-resident).
inline constexpr std::int64_t kConvMaxColumnElements = std::int64_t{1} << 18;

/// Below this many multiply-adds per thread, splitting the batch costs more than it saves.
inline constexpr std::int64_t kConvMinWorkPerSlot = std::int64_t{1} << 18;

/// The batch split: `slots` threads each take a contiguous range of samples, `chunk` at a time.
struct BatchSplit {
  std::int64_t slots = 1, chunk = 1;
};

inline BatchSplit split_batch(const ConvGeometry& g) {
  BatchSplit s;
  const std::int64_t work = g.batch * g.out_channels * g.positions() * g.patch();
  s.slots = std::max<std::int64_t>(1, std::min<std::int64_t>({num_threads(), g.batch, work / kConvMinWorkPerSlot}));
  const std::int64_t per_slot = (g.batch + s.slots - 1) / s.slots;
  const std::int64_t p = std::max<std::int64_t>(1, g.positions());
  const std::int64_t by_width = (kConvTargetColumns + p - 1) / p;
  const std::int64_t by_memory = kConvMaxColumnElements / std::max<std::int64_t>(1, g.patch() * p);
  s.chunk = std::max<std::int64_t>(1, std::min({by_width, by_memory, per_slot}));
  return s;
}

/// Calls fn(slot, first_sample, end_sample) for each slot's contiguous range; slots run in parallel.
template <class Fn>
void for_each_slot(const ConvGeometry& g, const BatchSplit& s, Fn&& fn) {
  parallel_for(s.slots, 1, [&](std::int64_t slot_begin, std::int64_t slot_end) {
    for (std::int64_t slot = slot_begin; slot < slot_end; ++slot)
      fn(slot, g.batch * slot / s.slots, g.batch * (slot + 1) / s.slots);
  });
}

/// Calls fn(slot, first_sample, count) for every chunk; slots run in parallel.
template <class Fn>
void for_each_chunk(const ConvGeometry& g, const BatchSplit& s, Fn&& fn) {
  for_each_slot(g, s, [&](std::int64_t slot, std::int64_t begin, std::int64_t end) {
    for (std::int64_t n = begin; n < end; n += s.chunk) fn(slot, n, std::min(s.chunk, end - n));
  });
}

/// One sample of the forward pass: out [O, positions] = w [O, patch] · col (+ bias).
template <class T>
void forward_sample(const GemmOperand<T>& col, const T* w, const T* bias, T* out, const ConvGeometry& g) {
  const std::int64_t p = g.positions();
  if (bias)
    for (std::int64_t o = 0; o < g.out_channels; ++o) std::fill_n(out + o * p, p, bias[o]);
  gemm(dense(w, g.out_channels, g.patch()), col, out, p, bias != nullptr);
}

/// One sample of the weight gradient: acc [O, patch] += gy [O, positions] · colᵀ (col given transposed).
template <class T>
void weight_grad_sample(const T* gy, const GemmOperand<T>& col_transposed, T* acc, const ConvGeometry& g) {
  gemm(dense(gy, g.out_channels, g.positions()), col_transposed, acc, g.patch(), true);
}

/// Partial sums of the weight gradient: slot 0 accumulates into dw, every other slot into its
/// own buffer, added into dw by finish().
template <class T>
class WeightGradPartials {
 public:
  WeightGradPartials(T* dw, const ConvGeometry& g, const BatchSplit& s)
      : dw_(dw), size_(g.out_channels * g.patch()), slots_(s.slots),
        buffer_(Tensor<T>::empty(Shape{(s.slots - 1) * size_})) {
    std::fill_n(dw_, size_, T(0));
    if (slots_ > 1) std::fill_n(buffer_.fresh_data(), buffer_.numel(), T(0));
  }
  T* of(std::int64_t slot) { return slot == 0 ? dw_ : buffer_.fresh_data() + (slot - 1) * size_; }
  void finish() {
    using Vec = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
    for (std::int64_t s = 1; s < slots_; ++s) Vec(dw_, size_) += Vec(of(s), size_);
  }

 private:
  T* dw_;
  std::int64_t size_, slots_;
  Tensor<T> buffer_;
};

/// Per-slot scratch: a column matrix [patch, chunk * positions] (each sample's GEMM reads or
/// writes its own columns, so NCHW tensors are never restaged).
template <class T>
struct ConvScratch {
  std::int64_t col_size;
  Tensor<T> buffer;
  ConvScratch(const ConvGeometry& g, const BatchSplit& s)
      : col_size(g.patch() * s.chunk * g.positions()), buffer(Tensor<T>::empty(Shape{s.slots * col_size})) {}
  T* col(std::int64_t slot) { return buffer.fresh_data() + slot * col_size; }
};

}  // namespace detail

/// y [N, O, OH, OW] = conv(x [N, C, H, W], w [O, C, KH, KW]) + bias [O] (bias may be null).
template <class T>
void conv2d_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g) {
  const auto split = detail::split_batch(g);
  detail::ConvScratch<T> scratch(g, split);
  const std::int64_t p = g.positions(), k = g.patch();
  detail::for_each_chunk(g, split, [&](std::int64_t slot, std::int64_t n0, std::int64_t count) {
    T* col = scratch.col(slot);
    const std::int64_t width = count * p;
    for (std::int64_t j = 0; j < count; ++j) im2col(x + (n0 + j) * g.input_size(), g, col + j * p, width);
    // One product per sample, each reading its columns of the chunk's column matrix and writing
    // its NCHW block directly (no staging copy).
    for (std::int64_t j = 0; j < count; ++j)
      detail::forward_sample(GemmOperand<T>{col + j * p, k, p, width}, w, bias, y + (n0 + j) * g.output_size(), g);
  });
}

/// Lowers every sample of x: sample n's column matrix [patch, positions] is at
/// cols + n * patch * positions, the layout the *_lowered kernels read.
template <class T>
void lower_batch(const T* x, const ConvGeometry& g, T* cols) {
  const std::int64_t block = g.patch() * g.positions();
  detail::for_each_slot(g, detail::split_batch(g), [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    for (std::int64_t n = begin; n < end; ++n) im2col(x + n * g.input_size(), g, cols + n * block, g.positions());
  });
}

/// conv2d_forward from the lowering of x by lower_batch.
template <class T>
void conv2d_forward_lowered(const T* cols, const T* w, const T* bias, T* y, const ConvGeometry& g) {
  const std::int64_t p = g.positions(), k = g.patch();
  detail::for_each_slot(g, detail::split_batch(g), [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    for (std::int64_t n = begin; n < end; ++n)
      detail::forward_sample(dense(cols + n * k * p, k, p), w, bias, y + n * g.output_size(), g);
  });
}

/// dx [N, C, H, W] = the adjoint of conv2d_forward in x, applied to gy [N, O, OH, OW].
template <class T>
void conv2d_input_grad(const T* gy, const T* w, T* dx, const ConvGeometry& g) {
  const auto split = detail::split_batch(g);
  detail::ConvScratch<T> scratch(g, split);
  const std::int64_t p = g.positions(), k = g.patch(), oc = g.out_channels;
  detail::for_each_chunk(g, split, [&](std::int64_t slot, std::int64_t n0, std::int64_t count) {
    T* col = scratch.col(slot);
    const std::int64_t width = count * p;
    for (std::int64_t j = 0; j < count; ++j)
      gemm(dense(w, oc, k, true), dense(gy + (n0 + j) * g.output_size(), oc, p), col + j * p, width);
    T* out = dx + n0 * g.input_size();
    std::fill_n(out, count * g.input_size(), T(0));
    for (std::int64_t j = 0; j < count; ++j) col2im(col + j * p, width, g, out + j * g.input_size());
  });
}

/// dw [O, C, KH, KW] = the adjoint of conv2d_forward in w: sum over the batch of gy · im2col(x)ᵀ.
template <class T>
void conv2d_weight_grad(const T* x, const T* gy, T* dw, const ConvGeometry& g) {
  const auto split = detail::split_batch(g);
  const std::int64_t p = g.positions(), k = g.patch();
  detail::ConvScratch<T> scratch(g, split);
  detail::WeightGradPartials<T> partials(dw, g, split);
  detail::for_each_chunk(g, split, [&](std::int64_t slot, std::int64_t n0, std::int64_t count) {
    T* col = scratch.col(slot);
    const std::int64_t width = count * p;
    for (std::int64_t j = 0; j < count; ++j) im2col(x + (n0 + j) * g.input_size(), g, col + j * p, width);
    for (std::int64_t j = 0; j < count; ++j)
      detail::weight_grad_sample(gy + (n0 + j) * g.output_size(), GemmOperand<T>{col + j * p, k, p, width, true},
                                 partials.of(slot), g);
  });
  partials.finish();
}

/// conv2d_weight_grad from the lowering of x by lower_batch.
template <class T>
void conv2d_weight_grad_lowered(const T* cols, const T* gy, T* dw, const ConvGeometry& g) {
  const auto split = detail::split_batch(g);
  const std::int64_t p = g.positions(), k = g.patch();
  detail::WeightGradPartials<T> partials(dw, g, split);
  detail::for_each_slot(g, split, [&](std::int64_t slot, std::int64_t begin, std::int64_t end) {
    for (std::int64_t n = begin; n < end; ++n)
      detail::weight_grad_sample(gy + n * g.output_size(), dense(cols + n * k * p, k, p, true), partials.of(slot), g);
  });
  partials.finish();
}

}  // namespace metagrad::cpu
