// SPDX-License-Identifier: MIT
// Ops driven by an IndexTensor (int64, never differentiated): index_select / index_add (whole
// slices along one dim), gather / scatter_add (one index per element, torch semantics), one_hot.
// Each pair is the other's adjoint, and the adjoint into zeros is an op of its own
// (index_select_backward, gather_backward), so every rule differentiates again. Every index is
// checked before any data moves; a bad one is an error naming the op, the value and the shapes.
// select (one index, dim dropped) lives in ops/shape.hpp, since stack's backward needs it.
#pragma once
#include <cstdint>
#include <optional>

#include "metagrad/backend/indexing.hpp"
#include "metagrad/core/creation.hpp"
#include "metagrad/ops/shape.hpp"

namespace metagrad {

namespace detail {

struct BadIndex {
  std::int64_t value = 0;
  Shape position;  // its multi-index in the index tensor
};

/// The first index outside [0, extent), if any; the common all-good case is one vectorised pass.
inline std::optional<BadIndex> find_bad_index(const IndexTensor& idx, std::int64_t extent) {
  if (idx.numel() == 0) return std::nullopt;
  const auto [lo, hi] = backend::index_min_max(idx);
  if (lo >= 0 && hi < extent) return std::nullopt;
  const std::int64_t* p = idx.data();
  std::int64_t at = 0;
  while (p[at] >= 0 && p[at] < extent) ++at;
  BadIndex bad{p[at], idx.shape()};
  for (int d = idx.dim() - 1; d >= 0; --d) {
    bad.position[d] = at % idx.shape()[d];
    at /= idx.shape()[d];
  }
  return bad;
}

/// Throws unless every index lies in [0, extent), naming the first bad one, where it sits and the shapes.
inline void check_index_range(const IndexTensor& idx, std::int64_t extent, int dim, const Shape& x_shape, const char* op) {
  if (const auto bad = find_bad_index(idx, extent))
    fail(op, "index ", bad->value, " at position ", bad->position, " is out of range for dim ", dim, " of extent ", extent,
         " (input shape ", x_shape, ", index shape ", idx.shape(), ")");
}

/// gather/scatter checks: idx has x's rank and fits inside x in every dim but `dim`.
inline void check_gather_shapes(const Shape& x, int dim, const Shape& idx, const char* op) {
  check(idx.rank() == x.rank(), op, "index of shape ", idx, " must have the rank of the input, shape ", x);
  for (int d = 0; d < x.rank(); ++d)
    check(d == dim || idx[d] <= x[d], op, "index of shape ", idx, " is larger than the input, shape ", x, ", in dim ", d);
}

inline Shape index_select_shape(const Shape& x, int dim, const IndexTensor& idx, const char* op) {
  check(idx.dim() == 1, op, "index must be 1-D, got shape ", idx.shape(), " (input shape ", x, ")");
  return with_extent(x, dim, idx.numel());
}

}  // namespace detail

template <Floating T>
Tensor<T> index_select_backward(const Tensor<T>& g, const Shape& shape, std::int64_t dim, const IndexTensor& idx);
template <Floating T>
Tensor<T> gather_backward(const Tensor<T>& g, const Shape& shape, std::int64_t dim, const IndexTensor& idx);

// ---------------------------------------------------------------------------------------------
// index_select / index_add

/// The slices of x at positions idx (1-D) along dim: out[..., j, ...] = x[..., idx[j], ...].
/// An embedding lookup is index_select(table, 0, ids).
template <Element T>
Tensor<T> index_select(const Tensor<T>& x, std::int64_t dim, const IndexTensor& idx) {
  const int d = detail::dim_in_shape(x.shape(), dim, "index_select");
  auto out = Tensor<T>::empty(detail::index_select_shape(x.shape(), d, idx, "index_select"));
  detail::check_index_range(idx, x.shape()[d], d, x.shape(), "index_select");
  backend::index_select(x, d, idx, out);
  return detail::record_if_floating(
      "index_select", std::move(out), {x},
      [d, idx](const auto& g, auto& c) { c.set(0, index_select_backward(g, c.input(0).shape(), d, idx)); },
      [d, idx](const auto& c) { return index_select(c.tangent(0), d, idx); });
}

/// A copy of x with src's slices added at positions idx along dim (repeated positions sum):
/// out[..., idx[j], ...] += src[..., j, ...]. Differentiable in x and src.
template <Element T>
Tensor<T> index_add(const Tensor<T>& x, std::int64_t dim, const IndexTensor& idx, const Tensor<T>& src) {
  const int d = detail::dim_in_shape(x.shape(), dim, "index_add");
  const Shape want = detail::index_select_shape(x.shape(), d, idx, "index_add");
  check(src.shape() == want, "index_add", "source of shape ", src.shape(), " must have shape ", want, " (input shape ",
        x.shape(), ", index shape ", idx.shape(), ")");
  detail::check_index_range(idx, x.shape()[d], d, x.shape(), "index_add");
  auto out = clone(x.detach());
  backend::index_add(out, d, idx, src);
  return detail::record_if_floating(
      "index_add", std::move(out), {x, src},
      [d, idx](const auto& g, auto& c) {
        if (c.wants(0)) c.set(0, g);
        if (c.wants(1)) c.set(1, index_select(g, d, idx));
      },
      [d, idx](const auto& c) {
        if (!c.has_tangent(1)) return c.tangent(0);
        if (!c.has_tangent(0)) return index_select_backward(c.tangent(1), c.input(0).shape(), d, idx);
        return index_add(c.tangent(0), d, idx, c.tangent(1));
      });
}

/// The adjoint of index_select: zeros of `shape` with g's slices added at idx along dim. Its own
/// backward is index_select.
template <Floating T>
Tensor<T> index_select_backward(const Tensor<T>& g, const Shape& shape, std::int64_t dim, const IndexTensor& idx) {
  const int d = detail::dim_in_shape(shape, dim, "index_select_backward");
  const Shape want = detail::index_select_shape(shape, d, idx, "index_select_backward");
  check(g.shape() == want, "index_select_backward", "gradient of shape ", g.shape(), " must have shape ", want,
        " (input shape ", shape, ")");
  detail::check_index_range(idx, shape[d], d, shape, "index_select_backward");
  auto out = zeros<T>(shape);
  backend::index_add(out, d, idx, g);
  return record(
      "index_select_backward", std::move(out), {g},
      [d, idx](const Tensor<T>& gg, BackwardContext<T>& c) { c.set(0, index_select(gg, d, idx)); },
      [shape, d, idx](const TangentContext<T>& c) { return index_select_backward(c.tangent(0), shape, d, idx); });
}

// ---------------------------------------------------------------------------------------------
// gather / scatter_add

/// torch.gather: out has idx's shape and out[i][j][k] = x[i][idx[i][j][k]][k] for dim 1 (likewise
/// for any dim). idx has x's rank and is no larger than x outside dim.
template <Element T>
Tensor<T> gather(const Tensor<T>& x, std::int64_t dim, const IndexTensor& idx) {
  const int d = detail::dim_in_shape(x.shape(), dim, "gather");
  detail::check_gather_shapes(x.shape(), d, idx.shape(), "gather");
  detail::check_index_range(idx, x.shape()[d], d, x.shape(), "gather");
  auto out = Tensor<T>::empty(idx.shape());
  backend::gather(x, d, idx, out);
  return detail::record_if_floating(
      "gather", std::move(out), {x},
      [d, idx](const auto& g, auto& c) { c.set(0, gather_backward(g, c.input(0).shape(), d, idx)); },
      [d, idx](const auto& c) { return gather(c.tangent(0), d, idx); });
}

namespace detail {
inline void check_scatter(const Shape& x, int dim, const IndexTensor& idx, const Shape& src, const char* op) {
  check_gather_shapes(x, dim, idx.shape(), op);
  check(src == idx.shape(), op, "source of shape ", src, " must have the index's shape ", idx.shape(), " (input shape ", x, ")");
  check_index_range(idx, x[dim], dim, x, op);
}
}  // namespace detail

/// torch.scatter_add, out of place: a copy of x with out[i][idx[i][j][k]][k] += src[i][j][k] for
/// dim 1 (likewise for any dim); repeated indices sum. src has idx's shape. Differentiable in x
/// and src.
template <Element T>
Tensor<T> scatter_add(const Tensor<T>& x, std::int64_t dim, const IndexTensor& idx, const Tensor<T>& src) {
  const int d = detail::dim_in_shape(x.shape(), dim, "scatter_add");
  detail::check_scatter(x.shape(), d, idx, src.shape(), "scatter_add");
  auto out = clone(x.detach());
  backend::scatter_add(out, d, idx, src);
  return detail::record_if_floating(
      "scatter_add", std::move(out), {x, src},
      [d, idx](const auto& g, auto& c) {
        if (c.wants(0)) c.set(0, g);
        if (c.wants(1)) c.set(1, gather(g, d, idx));
      },
      [d, idx](const auto& c) {
        if (!c.has_tangent(1)) return c.tangent(0);
        if (!c.has_tangent(0)) return gather_backward(c.tangent(1), c.input(0).shape(), d, idx);
        return scatter_add(c.tangent(0), d, idx, c.tangent(1));
      });
}

/// The adjoint of gather: scatter_add of g into zeros of `shape`. Its own backward is gather.
template <Floating T>
Tensor<T> gather_backward(const Tensor<T>& g, const Shape& shape, std::int64_t dim, const IndexTensor& idx) {
  const int d = detail::dim_in_shape(shape, dim, "gather_backward");
  detail::check_scatter(shape, d, idx, g.shape(), "gather_backward");
  auto out = zeros<T>(shape);
  backend::scatter_add(out, d, idx, g);
  return record(
      "gather_backward", std::move(out), {g},
      [d, idx](const Tensor<T>& gg, BackwardContext<T>& c) { c.set(0, gather(gg, d, idx)); },
      [shape, d, idx](const TangentContext<T>& c) { return gather_backward(c.tangent(0), shape, d, idx); });
}

// ---------------------------------------------------------------------------------------------
// one_hot

/// A constant tensor of shape labels.shape + [num_classes] with a 1 at each label's class.
template <Element T>
Tensor<T> one_hot(const IndexTensor& labels, std::int64_t num_classes) {
  check(num_classes > 0, "one_hot", "num_classes must be positive, got ", num_classes, " (labels of shape ", labels.shape(), ")");
  check(labels.dim() < kMaxRank, "one_hot", "labels of shape ", labels.shape(), " leave no room for the class dim");
  Shape out_shape = labels.shape();
  out_shape.push_back(num_classes);
  if (const auto bad = detail::find_bad_index(labels, num_classes))
    fail("one_hot", "label ", bad->value, " at position ", bad->position, " is out of range for ", num_classes,
         " classes (labels of shape ", labels.shape(), ")");
  auto out = Tensor<T>::empty(out_shape);
  backend::one_hot(labels, num_classes, out);
  return out;
}

}  // namespace metagrad
