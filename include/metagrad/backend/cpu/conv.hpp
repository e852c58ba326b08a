// SPDX-License-Identifier: MIT
// 2-D convolution kernels on NCHW buffers: im2col + GEMM for the forward pass and the weight
// gradient, GEMM + col2im for the input gradient. The batch is split across threads, and each
// thread lowers a chunk of samples into one cache-sized column matrix; every sample's GEMM then
// reads (or writes) its own columns of it in place and its NCHW block directly, which measured
// faster than one wide GEMM per chunk plus restaging NCHW planes around it. With fewer samples
// than threads, the GEMM takes the threads instead.
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>

#include "metagrad/backend/cpu/gemm.hpp"

namespace metagrad::cpu {

/// One spatial axis: output o reads input o * stride - padding + tap * dilation for each tap.
struct ConvAxis {
  std::int64_t in = 0, kernel = 1, stride = 1, padding = 0, dilation = 1, out = 0;

  std::int64_t input_of(std::int64_t o, std::int64_t tap) const { return o * stride - padding + tap * dilation; }

  /// The outputs [first, last) whose input for `tap` lies inside [0, in); the rest read padding.
  std::pair<std::int64_t, std::int64_t> valid_outputs(std::int64_t tap) const {
    const std::int64_t shift = padding - tap * dilation;  // input_of(o, tap) = o * stride - shift
    const auto ceil_div = [this](std::int64_t a) { return a <= 0 ? std::int64_t{0} : (a + stride - 1) / stride; };
    const std::int64_t first = std::min(ceil_div(shift), out);
    const std::int64_t last = std::clamp(ceil_div(in + shift), first, out);
    return {first, last};
  }
};

struct ConvGeometry {
  std::int64_t batch = 0, in_channels = 0, out_channels = 0;
  ConvAxis h, w;

  /// Rows of the column matrix: one per (input channel, kernel tap).
  std::int64_t patch() const { return in_channels * h.kernel * w.kernel; }
  std::int64_t positions() const { return h.out * w.out; }
  std::int64_t input_size() const { return in_channels * h.in * w.in; }
  std::int64_t output_size() const { return out_channels * positions(); }
};

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
            std::copy_n(src + g.w.input_of(w0, j), w1 - w0, d + w0);
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
            T* d = dst + g.w.input_of(w0, j);
            for (std::int64_t ow = w0; ow < w1; ++ow) d[ow - w0] += s[ow];
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

/// Calls fn(slot, first_sample, count) for every chunk; slots run in parallel.
template <class Fn>
void for_each_chunk(const ConvGeometry& g, const BatchSplit& s, Fn&& fn) {
  parallel_for(s.slots, 1, [&](std::int64_t slot_begin, std::int64_t slot_end) {
    for (std::int64_t slot = slot_begin; slot < slot_end; ++slot) {
      const std::int64_t begin = g.batch * slot / s.slots, end = g.batch * (slot + 1) / s.slots;
      for (std::int64_t n = begin; n < end; n += s.chunk) fn(slot, n, std::min(s.chunk, end - n));
    }
  });
}

/// Per-slot scratch: a column matrix [patch, chunk * positions] (each sample's GEMM reads or
/// writes its own columns, so NCHW tensors are never restaged) and `extra` elements more.
template <class T>
struct ConvScratch {
  std::int64_t col_size, extra_size;
  Tensor<T> buffer;
  ConvScratch(const ConvGeometry& g, const BatchSplit& s, std::int64_t extra = 0)
      : col_size(g.patch() * s.chunk * g.positions()),
        extra_size(extra),
        buffer(Tensor<T>::empty(Shape{s.slots * (col_size + extra_size)})) {}
  T* col(std::int64_t slot) { return buffer.fresh_data() + slot * (col_size + extra_size); }
  T* extra(std::int64_t slot) { return col(slot) + col_size; }
};

}  // namespace detail

/// y [N, O, OH, OW] = conv(x [N, C, H, W], w [O, C, KH, KW]) + bias [O] (bias may be null).
template <class T>
void conv2d_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g) {
  const auto split = detail::split_batch(g);
  detail::ConvScratch<T> scratch(g, split);
  const std::int64_t p = g.positions(), k = g.patch(), oc = g.out_channels;
  detail::for_each_chunk(g, split, [&](std::int64_t slot, std::int64_t n0, std::int64_t count) {
    T* col = scratch.col(slot);
    const std::int64_t width = count * p;
    for (std::int64_t j = 0; j < count; ++j) im2col(x + (n0 + j) * g.input_size(), g, col + j * p, width);
    // One product per sample, each reading its columns of the chunk's column matrix and writing
    // its NCHW block directly (no staging copy).
    for (std::int64_t j = 0; j < count; ++j) {
      T* out = y + (n0 + j) * g.output_size();
      if (bias)
        for (std::int64_t o = 0; o < oc; ++o) std::fill_n(out + o * p, p, bias[o]);
      gemm(dense(w, oc, k), GemmOperand<T>{col + j * p, k, p, width}, out, p, bias != nullptr);
    }
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
  const std::int64_t p = g.positions(), k = g.patch(), oc = g.out_channels;
  // Slot 0 accumulates into dw; every other slot into its own partial sum, added at the end.
  detail::ConvScratch<T> scratch(g, split, oc * k);
  std::fill_n(dw, oc * k, T(0));
  for (std::int64_t s = 1; s < split.slots; ++s) std::fill_n(scratch.extra(s), oc * k, T(0));
  detail::for_each_chunk(g, split, [&](std::int64_t slot, std::int64_t n0, std::int64_t count) {
    T* col = scratch.col(slot);
    const std::int64_t width = count * p;
    for (std::int64_t j = 0; j < count; ++j) im2col(x + (n0 + j) * g.input_size(), g, col + j * p, width);
    for (std::int64_t j = 0; j < count; ++j)
      gemm(dense(gy + (n0 + j) * g.output_size(), oc, p), GemmOperand<T>{col + j * p, k, p, width, true},
           slot == 0 ? dw : scratch.extra(slot), k, true);
  });
  using Vec = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  for (std::int64_t s = 1; s < split.slots; ++s) Vec(dw, oc * k) += Vec(scratch.extra(s), oc * k);
}

}  // namespace metagrad::cpu
