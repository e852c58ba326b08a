// SPDX-License-Identifier: MIT
// 2-D pooling over the last two dims of [N, C, H, W] (or [C, H, W]) tensors, PyTorch semantics.
// max_pool2d records the argmax of every window; its gradient is a scatter-add of g to those
// positions, whose adjoint is a gather at the same positions: two ops, each the other's backward.
// avg_pool2d and adaptive_avg_pool2d are linear: both are one window-mean op whose backward is
// its adjoint op, and the adjoint's backward is the window mean again.
#pragma once
#include <memory>
#include <optional>
#include <utility>

#include "metagrad/backend/pool.hpp"
#include "metagrad/ops/conv.hpp"  // Size2d

namespace metagrad {

namespace detail {
/// Both axes' windows of one pooling and the names its two ops are recorded under.
struct PoolWindows {
  backend::PoolAxis h, w;
  const char* name;          // the forward op
  const char* adjoint_name;  // its adjoint
};
using PoolWindowsPtr = std::shared_ptr<const PoolWindows>;

/// Planes of x (all dims but the last two) and x's shape with the last two replaced by (h, w).
inline std::int64_t plane_count(const Shape& s) { return s.numel() / std::max<std::int64_t>(1, s[s.rank() - 2] * s[s.rank() - 1]); }
inline Shape with_plane(const Shape& s, std::int64_t h, std::int64_t w) {
  Shape out = s;
  out[s.rank() - 2] = h;
  out[s.rank() - 1] = w;
  return out;
}

inline void check_pool_input(const Shape& x, const char* op) {
  check(x.rank() == 3 || x.rank() == 4, op, "input must be [N, C, H, W] or [C, H, W], got ", x);
}

/// Checks a sliding pooling (kernel, stride, padding) of input x and returns its windows.
inline PoolWindows sliding_windows(const Shape& x, Size2d kernel, Size2d stride, Size2d padding, bool count_padding,
                                   const char* op, const char* adjoint_name) {
  check_pool_input(x, op);
  check(kernel.h >= 1 && kernel.w >= 1, op, "kernel ", kernel, " must be positive");
  check(stride.h >= 1 && stride.w >= 1, op, "stride ", stride, " must be positive");
  check(padding.h >= 0 && padding.w >= 0 && 2 * padding.h <= kernel.h && 2 * padding.w <= kernel.w, op, "padding ",
        padding, " must be non-negative and at most half the kernel ", kernel);
  const std::int64_t h = x[x.rank() - 2], w = x[x.rank() - 1];
  check(kernel.h <= h + 2 * padding.h && kernel.w <= w + 2 * padding.w, op, "kernel ", kernel,
        " is larger than the padded input of shape ", x, " (padding ", padding, ")");
  return {backend::sliding_axis(h, kernel.h, stride.h, padding.h, count_padding),
          backend::sliding_axis(w, kernel.w, stride.w, padding.w, count_padding), op, adjoint_name};
}

template <Floating T>
Tensor<T> window_mean_adjoint(const Tensor<T>& g, const PoolWindowsPtr& win);

/// The mean of x over every window (a linear op; its backward is window_mean_adjoint).
template <Floating T>
Tensor<T> window_mean(const Tensor<T>& x, const PoolWindowsPtr& win) {
  auto y = Tensor<T>::empty(with_plane(x.shape(), win->h.out(), win->w.out()));
  backend::window_mean(x, win->h, win->w, plane_count(x.shape()), y);
  return record(win->name, std::move(y), {x},
                [win](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, window_mean_adjoint(g, win)); },
                [win](const TangentContext<T>& c) { return window_mean(c.tangent(0), win); });
}

/// The adjoint of window_mean (its backward; its own backward is window_mean).
template <Floating T>
Tensor<T> window_mean_adjoint(const Tensor<T>& g, const PoolWindowsPtr& win) {
  auto dx = Tensor<T>::empty(with_plane(g.shape(), win->h.in, win->w.in));
  backend::window_mean_adjoint(g, win->h, win->w, plane_count(g.shape()), dx);
  return record(win->adjoint_name, std::move(dx), {g},
                [win](const Tensor<T>& u, BackwardContext<T>& c) { c.set(0, window_mean(u, win)); },
                [win](const TangentContext<T>& c) { return window_mean_adjoint(c.tangent(0), win); });
}

template <Floating T>
Tensor<T> pool_gather(const Tensor<T>& x, const IndexTensor& indices);

/// dx of shape input_shape with g added at the in-plane positions `indices` (zero elsewhere):
/// max pooling's gradient. Its backward is pool_gather at the same positions.
template <Floating T>
Tensor<T> pool_scatter(const Tensor<T>& g, const IndexTensor& indices, const Shape& input_shape) {
  auto dx = Tensor<T>::empty(input_shape);
  const std::int64_t out_plane = g.size(-2) * g.size(-1);
  backend::plane_scatter_add(g, indices, plane_count(input_shape), out_plane,
                             input_shape[input_shape.rank() - 2] * input_shape[input_shape.rank() - 1], dx);
  return record(
      "pool_scatter", std::move(dx), {g},
      [indices](const Tensor<T>& u, BackwardContext<T>& c) { c.set(0, pool_gather(u, indices)); },
      [indices](const TangentContext<T>& c) { return pool_scatter(c.tangent(0), indices, c.output_shape()); });
}

/// x at the in-plane positions `indices` (shaped like the pooled output). Its backward is pool_scatter.
template <Floating T>
Tensor<T> pool_gather(const Tensor<T>& x, const IndexTensor& indices) {
  auto y = Tensor<T>::empty(with_plane(x.shape(), indices.size(-2), indices.size(-1)));
  const std::int64_t out_plane = indices.size(-2) * indices.size(-1);
  backend::plane_gather(x, indices, plane_count(x.shape()), out_plane, x.size(-2) * x.size(-1), y);
  return record(
      "pool_gather", std::move(y), {x},
      [indices](const Tensor<T>& u, BackwardContext<T>& c) { c.set(0, pool_scatter(u, indices, c.input(0).shape())); },
      [indices](const TangentContext<T>& c) { return pool_gather(c.tangent(0), indices); });
}
}  // namespace detail

/// Max pooling and, for every output, the position h * W + w of its maximum within the input
/// plane (PyTorch's return_indices layout). stride defaults to the kernel; padding reads -inf.
template <Floating T>
std::pair<Tensor<T>, IndexTensor> max_pool2d_with_indices(const Tensor<T>& x, Size2d kernel,
                                                          std::optional<Size2d> stride = std::nullopt,
                                                          Size2d padding = 0) {
  const auto win = detail::sliding_windows(x.shape(), kernel, stride.value_or(kernel), padding, false, "max_pool2d", "");
  const Shape out = detail::with_plane(x.shape(), win.h.out(), win.w.out());
  auto y = Tensor<T>::empty(out);
  auto indices = IndexTensor::empty(out);
  backend::window_max(x, win.h, win.w, detail::plane_count(x.shape()), y, indices);
  y = record(
      "max_pool2d", std::move(y), {x},
      [indices](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, detail::pool_scatter(g, indices, c.input(0).shape())); },
      // The tangent at each window's argmax.
      [indices](const TangentContext<T>& c) { return detail::pool_gather(c.tangent(0), indices); });
  return {std::move(y), std::move(indices)};
}

template <Floating T>
Tensor<T> max_pool2d(const Tensor<T>& x, Size2d kernel, std::optional<Size2d> stride = std::nullopt, Size2d padding = 0) {
  return max_pool2d_with_indices(x, kernel, stride, padding).first;
}

/// Average pooling; stride defaults to the kernel. With count_include_pad the divisor counts the
/// padded positions a window covers, as in PyTorch.
template <Floating T>
Tensor<T> avg_pool2d(const Tensor<T>& x, Size2d kernel, std::optional<Size2d> stride = std::nullopt, Size2d padding = 0,
                     bool count_include_pad = true) {
  auto win = std::make_shared<const detail::PoolWindows>(detail::sliding_windows(
      x.shape(), kernel, stride.value_or(kernel), padding, count_include_pad, "avg_pool2d", "avg_pool2d_adjoint"));
  return detail::window_mean(x, win);
}

/// Average pooling to a fixed output size, with PyTorch's window bounds
/// [floor(o * in / out), ceil((o + 1) * in / out)).
template <Floating T>
Tensor<T> adaptive_avg_pool2d(const Tensor<T>& x, Size2d output_size) {
  const char* op = "adaptive_avg_pool2d";
  detail::check_pool_input(x.shape(), op);
  check(output_size.h >= 1 && output_size.w >= 1, op, "output size ", output_size, " must be positive");
  const std::int64_t h = x.size(-2), w = x.size(-1);
  check(h >= 1 && w >= 1, op, "input ", x.shape(), " has an empty plane");
  auto win = std::make_shared<const detail::PoolWindows>(detail::PoolWindows{
      backend::adaptive_axis(h, output_size.h), backend::adaptive_axis(w, output_size.w), op, "adaptive_avg_pool2d_adjoint"});
  return detail::window_mean(x, win);
}

}  // namespace metagrad
