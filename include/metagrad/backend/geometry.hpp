// SPDX-License-Identifier: MIT
// Device-neutral geometry of the kernels: how a reduction, a copy, a convolution, a pooling or a
// batched product walks its tensors. Computed on the host by the ops and read by every device's
// kernels, so it lives outside any one backend.
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "metagrad/core/shape.hpp"

namespace metagrad::backend {

/// A tensor seen as [outer, extent, inner] around the reduced dim.
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

/// A tensor seen as [outer, extent, inner] around one dim.
struct DimView {
  std::int64_t outer = 1, extent = 1, inner = 1;
};

inline DimView dim_view(const Shape& s, int dim) {
  DimView v;
  for (int i = 0; i < dim; ++i) v.outer *= s[i];
  v.extent = s[dim];
  for (int i = dim + 1; i < s.rank(); ++i) v.inner *= s[i];
  return v;
}

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

/// The pooling windows along one axis of extent `in`: output o covers [start[o], end[o]).
struct PoolAxis {
  std::int64_t in = 0;
  std::vector<std::int64_t> start, end, divisor;
  std::int64_t out() const { return static_cast<std::int64_t>(start.size()); }
};

/// Windows of a kernel sliding by `stride` over an input padded by `padding` on both sides. The
/// divisor counts padded positions when `count_padding` (avg_pool2d's count_include_pad).
inline PoolAxis sliding_axis(std::int64_t in, std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                             bool count_padding) {
  PoolAxis a;
  a.in = in;
  const std::int64_t out = (in + 2 * padding - kernel) / stride + 1;
  for (std::int64_t o = 0; o < out; ++o) {
    const std::int64_t s = o * stride - padding, e = std::min(s + kernel, in + padding);
    a.start.push_back(std::max<std::int64_t>(s, 0));
    a.end.push_back(std::min(e, in));
    a.divisor.push_back(count_padding ? e - s : a.end.back() - a.start.back());
  }
  return a;
}

/// PyTorch's adaptive windows: output o of `out` covers [floor(o*in/out), ceil((o+1)*in/out)).
inline PoolAxis adaptive_axis(std::int64_t in, std::int64_t out) {
  PoolAxis a;
  a.in = in;
  for (std::int64_t o = 0; o < out; ++o) {
    a.start.push_back(o * in / out);
    a.end.push_back(((o + 1) * in + out - 1) / out);
    a.divisor.push_back(a.end.back() - a.start.back());
  }
  return a;
}

/// The batch dims of a matrix product operand: all but the last two.
inline Shape matrix_batch(const Shape& s) {
  Shape b;
  for (int i = 0; i + 2 < s.rank(); ++i) b.push_back(s[i]);
  return b;
}

}  // namespace metagrad::backend
