// SPDX-License-Identifier: MIT
// Pooling kernels on planes (the last two dims of an [..., H, W] tensor). A pooling is described
// per axis by its windows: for every output index, the input range it covers (already clipped to
// the input) and the divisor of an average over it. One kernel pair (window mean and its adjoint)
// then serves both avg_pool2d and adaptive_avg_pool2d, and max pooling scans the same windows.
// Max pooling's gradient is a scatter-add to the argmax positions; its adjoint is a gather.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "metagrad/backend/cpu/parallel.hpp"
#include "metagrad/backend/geometry.hpp"

namespace metagrad::cpu {

using backend::adaptive_axis;
using backend::PoolAxis;
using backend::sliding_axis;

namespace detail {
/// Runs fn(plane) over `planes` planes of `work` elements each, in parallel when large enough.
template <class Fn>
void for_each_plane(std::int64_t planes, std::int64_t work, Fn&& fn) {
  parallel_for(planes, std::max<std::int64_t>(1, (std::int64_t{1} << 14) / std::max<std::int64_t>(work, 1)),
               [&](std::int64_t b, std::int64_t e) {
                 for (std::int64_t p = b; p < e; ++p) fn(p);
               });
}
}  // namespace detail

namespace detail {
/// The common window extent and stride of an axis whose windows are all unclipped and evenly
/// spaced ({0, 0} otherwise), so that max pooling can skip the per-window bounds.
inline std::pair<std::int64_t, std::int64_t> uniform_windows(const PoolAxis& a) {
  if (a.out() == 0) return {0, 0};
  const std::int64_t extent = a.end[0] - a.start[0], stride = a.out() > 1 ? a.start[1] - a.start[0] : 1;
  for (std::int64_t o = 0; o < a.out(); ++o)
    if (a.start[o] != a.start[0] + o * stride || a.end[o] - a.start[o] != extent) return {0, 0};
  return {extent, stride};
}

/// window_max over uniform windows; KH/KW > 0 fix the extents at compile time (0: kh/kw). Scans
/// each window in the same order with the same test as the general loop, without branches.
template <std::int64_t KH, std::int64_t KW, class T>
void uniform_window_max(const T* x, std::int64_t in_w, std::int64_t out_h, std::int64_t out_w, std::int64_t h0,
                        std::int64_t w0, std::int64_t kh, std::int64_t kw, std::int64_t sh, std::int64_t sw, T* y,
                        std::int64_t* idx) {
  const std::int64_t ekh = KH > 0 ? KH : kh, ekw = KW > 0 ? KW : kw;
  for (std::int64_t oh = 0; oh < out_h; ++oh) {
    const std::int64_t top = h0 + oh * sh;
    for (std::int64_t ow = 0; ow < out_w; ++ow) {
      const std::int64_t left = w0 + ow * sw;
      T best = -std::numeric_limits<T>::infinity();
      std::int64_t at = top * in_w + left;
      for (std::int64_t h = top; h < top + ekh; ++h)
        for (std::int64_t w = left; w < left + ekw; ++w) {
          const T v = x[h * in_w + w];
          const bool take = v > best || std::isnan(v);
          best = take ? v : best;
          at = take ? h * in_w + w : at;
        }
      y[oh * out_w + ow] = best;
      idx[oh * out_w + ow] = at;
    }
  }
}
}  // namespace detail

/// y = the maximum of x over each window; idx = its position h * W + w in the plane. Like
/// PyTorch, the first maximum wins and a NaN is propagated.
template <class T>
void window_max(const T* x, const PoolAxis& ah, const PoolAxis& aw, std::int64_t planes, T* y, std::int64_t* idx) {
  const std::int64_t in_plane = ah.in * aw.in, out_plane = ah.out() * aw.out();
  const auto [kh, sh] = detail::uniform_windows(ah);
  const auto [kw, sw] = detail::uniform_windows(aw);
  if (kh > 0 && kw > 0) {
    const std::int64_t h0 = ah.start[0], w0 = aw.start[0], oh = ah.out(), ow = aw.out();
    detail::for_each_plane(planes, in_plane, [&](std::int64_t p) {
      if (kh == 2 && kw == 2)
        detail::uniform_window_max<2, 2>(x + p * in_plane, aw.in, oh, ow, h0, w0, kh, kw, sh, sw, y + p * out_plane,
                                         idx + p * out_plane);
      else
        detail::uniform_window_max<0, 0>(x + p * in_plane, aw.in, oh, ow, h0, w0, kh, kw, sh, sw, y + p * out_plane,
                                         idx + p * out_plane);
    });
    return;
  }
  detail::for_each_plane(planes, in_plane, [&](std::int64_t p) {
    const T* xp = x + p * in_plane;
    T* yp = y + p * out_plane;
    std::int64_t* ip = idx + p * out_plane;
    for (std::int64_t oh = 0; oh < ah.out(); ++oh)
      for (std::int64_t ow = 0; ow < aw.out(); ++ow) {
        T best = -std::numeric_limits<T>::infinity();
        std::int64_t at = ah.start[oh] * aw.in + aw.start[ow];
        for (std::int64_t h = ah.start[oh]; h < ah.end[oh]; ++h)
          for (std::int64_t w = aw.start[ow]; w < aw.end[ow]; ++w) {
            const T v = xp[h * aw.in + w];
            if (v > best || std::isnan(v)) {
              best = v;
              at = h * aw.in + w;
            }
          }
        yp[oh * aw.out() + ow] = best;
        ip[oh * aw.out() + ow] = at;
      }
  });
}

/// y = the mean of x over each window (its sum over the window's divisor).
template <class T>
void window_mean(const T* x, const PoolAxis& ah, const PoolAxis& aw, std::int64_t planes, T* y) {
  const std::int64_t in_plane = ah.in * aw.in, out_plane = ah.out() * aw.out();
  detail::for_each_plane(planes, in_plane, [&](std::int64_t p) {
    const T* xp = x + p * in_plane;
    T* yp = y + p * out_plane;
    for (std::int64_t oh = 0; oh < ah.out(); ++oh)
      for (std::int64_t ow = 0; ow < aw.out(); ++ow) {
        T s = 0;
        for (std::int64_t h = ah.start[oh]; h < ah.end[oh]; ++h)
          for (std::int64_t w = aw.start[ow]; w < aw.end[ow]; ++w) s += xp[h * aw.in + w];
        yp[oh * aw.out() + ow] = s / static_cast<T>(ah.divisor[oh] * aw.divisor[ow]);
      }
  });
}

/// dx = the adjoint of window_mean applied to g: each g spread evenly (by the same divisor) over
/// its window, overlapping windows adding up.
template <class T>
void window_mean_adjoint(const T* g, const PoolAxis& ah, const PoolAxis& aw, std::int64_t planes, T* dx) {
  const std::int64_t in_plane = ah.in * aw.in, out_plane = ah.out() * aw.out();
  detail::for_each_plane(planes, in_plane, [&](std::int64_t p) {
    const T* gp = g + p * out_plane;
    T* dp = dx + p * in_plane;
    std::fill_n(dp, in_plane, T(0));
    for (std::int64_t oh = 0; oh < ah.out(); ++oh)
      for (std::int64_t ow = 0; ow < aw.out(); ++ow) {
        const T v = gp[oh * aw.out() + ow] / static_cast<T>(ah.divisor[oh] * aw.divisor[ow]);
        for (std::int64_t h = ah.start[oh]; h < ah.end[oh]; ++h)
          for (std::int64_t w = aw.start[ow]; w < aw.end[ow]; ++w) dp[h * aw.in + w] += v;
      }
  });
}

/// dx[plane, idx[plane, k]] += g[plane, k], with dx zeroed first (planes of in_plane elements).
template <class T>
void plane_scatter_add(const T* g, const std::int64_t* idx, std::int64_t planes, std::int64_t out_plane,
                       std::int64_t in_plane, T* dx) {
  detail::for_each_plane(planes, in_plane, [&](std::int64_t p) {
    T* dp = dx + p * in_plane;
    std::fill_n(dp, in_plane, T(0));
    for (std::int64_t k = 0; k < out_plane; ++k) dp[idx[p * out_plane + k]] += g[p * out_plane + k];
  });
}

/// y[plane, k] = x[plane, idx[plane, k]].
template <class T>
void plane_gather(const T* x, const std::int64_t* idx, std::int64_t planes, std::int64_t out_plane,
                  std::int64_t in_plane, T* y) {
  detail::for_each_plane(planes, out_plane, [&](std::int64_t p) {
    for (std::int64_t k = 0; k < out_plane; ++k) y[p * out_plane + k] = x[p * in_plane + idx[p * out_plane + k]];
  });
}

}  // namespace metagrad::cpu
