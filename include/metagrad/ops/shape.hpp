// SPDX-License-Identifier: MIT
// Ops that rearrange elements: permute/transpose/t, slice/narrow/select, concat/stack and their
// inverses split/chunk/unbind, flip, repeat, expand, clone. Tensors are contiguous, so each makes
// a copy (backend/copy.hpp). Every op also works on index tensors, without a graph. Backward
// rules pair them up: permute <-> the inverse permute, slice <-> slice_backward (zero padding,
// itself an op whose backward is slice), concat <-> slices, stack <-> select.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "metagrad/autograd/node.hpp"
#include "metagrad/backend/copy.hpp"
#include "metagrad/ops/broadcast.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad {

namespace detail {

/// record() for floating tensors; index tensors have no graph and no tangents. The rules are
/// generic lambdas, so they are never instantiated for index tensors.
template <Element T, class Rule, class TangentRule>
Tensor<T> record_if_floating(const char* name, Tensor<T> out, std::span<const Tensor<T>> inputs, Rule&& rule,
                             TangentRule&& tangent_rule) {
  if constexpr (Floating<T>)
    return record(name, std::move(out), inputs, std::forward<Rule>(rule), std::forward<TangentRule>(tangent_rule));
  else return out;
}
template <Element T, class Rule, class TangentRule>
Tensor<T> record_if_floating(const char* name, Tensor<T> out, std::initializer_list<Tensor<T>> inputs, Rule&& rule,
                             TangentRule&& tangent_rule) {
  return record_if_floating(name, std::move(out), std::span<const Tensor<T>>(inputs.begin(), inputs.size()),
                            std::forward<Rule>(rule), std::forward<TangentRule>(tangent_rule));
}

/// A possibly negative dim of `s`, checked; the error names the op and the shape.
inline int dim_in_shape(const Shape& s, std::int64_t dim, const char* op) {
  check(s.rank() > 0, op, "needs a tensor of rank >= 1, got shape ", s);
  check(dim >= -s.rank() && dim < s.rank(), op, "dim ", dim, " is out of range for shape ", s);
  return static_cast<int>(dim < 0 ? dim + s.rank() : dim);
}

inline Shape with_extent(Shape s, int dim, std::int64_t extent) {
  s[dim] = extent;
  return s;
}

/// The (start, step, length) a Python-style slice [start:end:step] selects from `extent` elements.
struct SliceRange {
  std::int64_t start = 0, step = 1, length = 0;
};
inline SliceRange slice_range(std::int64_t extent, std::int64_t start, std::int64_t end, std::int64_t step) {
  auto clamp = [extent](std::int64_t i) { return std::clamp<std::int64_t>(i < 0 ? i + extent : i, 0, extent); };
  const std::int64_t s = clamp(start), e = clamp(end);
  return {s, step, e > s ? (e - s - 1) / step + 1 : 0};  // no overflow, even for a huge step
}

template <Element T>
Tensor<T> slice_range_copy(const Tensor<T>& x, int d, SliceRange r) {
  auto out = Tensor<T>::empty(with_extent(x.shape(), d, r.length));
  backend::slice_copy(x, d, r.start, r.step, r.length, out);
  return out;
}

}  // namespace detail

template <Element T>
Tensor<T> slice(const Tensor<T>& x, std::int64_t dim, std::int64_t start,
                std::int64_t end = std::numeric_limits<std::int64_t>::max(), std::int64_t step = 1);

// ---------------------------------------------------------------------------------------------
// permute, transpose, t

/// out dim i is x dim dims[i]; dims is a permutation of x's dims (negative dims allowed).
template <Element T>
Tensor<T> permute(const Tensor<T>& x, const std::vector<std::int64_t>& dims) {
  const int rank = x.dim();
  check(static_cast<int>(dims.size()) == rank, "permute", dims.size(), " dims given for a tensor of shape ", x.shape());
  std::array<int, kMaxRank> perm{};
  std::array<bool, kMaxRank> seen{};
  bool identity = true;
  for (int i = 0; i < rank; ++i) {
    const std::int64_t d = dims[static_cast<std::size_t>(i)];
    check(d >= -rank && d < rank, "permute", "dim ", d, " is out of range for shape ", x.shape());
    const int p = static_cast<int>(d < 0 ? d + rank : d);
    check(!seen[static_cast<std::size_t>(p)], "permute", "dim ", p, " is repeated in the permutation for shape ", x.shape());
    seen[static_cast<std::size_t>(p)] = true;
    perm[static_cast<std::size_t>(i)] = p;
    identity = identity && p == i;
  }
  if (identity) return x;
  Shape out_shape;
  std::vector<std::int64_t> inverse(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) {
    out_shape.push_back(x.shape()[perm[static_cast<std::size_t>(i)]]);
    inverse[static_cast<std::size_t>(perm[static_cast<std::size_t>(i)])] = i;
  }
  auto out = Tensor<T>::empty(out_shape);
  backend::permute_copy(x, std::span<const int>(perm.data(), static_cast<std::size_t>(rank)), out);
  return detail::record_if_floating(
      "permute", std::move(out), {x}, [inverse](const auto& g, auto& c) { c.set(0, permute(g, inverse)); },
      [dims](const auto& c) { return permute(c.tangent(0), dims); });
}

/// x with dims d0 and d1 swapped.
template <Element T>
Tensor<T> transpose(const Tensor<T>& x, std::int64_t d0, std::int64_t d1) {
  const int a = detail::dim_in_shape(x.shape(), d0, "transpose"), b = detail::dim_in_shape(x.shape(), d1, "transpose");
  if (a == b) return x;
  std::vector<std::int64_t> dims(static_cast<std::size_t>(x.dim()));
  for (int i = 0; i < x.dim(); ++i) dims[static_cast<std::size_t>(i)] = i;
  std::swap(dims[static_cast<std::size_t>(a)], dims[static_cast<std::size_t>(b)]);
  return permute(x, dims);
}

/// The transpose of a matrix; a tensor of rank 0 or 1 is returned as it is.
template <Element T>
Tensor<T> t(const Tensor<T>& x) {
  check(x.dim() <= 2, "t", "expects a tensor of rank <= 2, got shape ", x.shape());
  return x.dim() < 2 ? x : transpose(x, 0, 1);
}

// ---------------------------------------------------------------------------------------------
// slice and its adjoint

/// The adjoint of slice: zeros of `shape` with g placed at start, start+step, ... along dim.
/// Its own backward is slice, so it differentiates to any order.
template <Element T>
Tensor<T> slice_backward(const Tensor<T>& g, const Shape& shape, std::int64_t dim, std::int64_t start, std::int64_t step) {
  const int d = detail::dim_in_shape(shape, dim, "slice_backward");
  const std::int64_t len = g.dim() == shape.rank() ? g.shape()[d] : -1;
  check(len >= 0 && g.shape() == detail::with_extent(shape, d, len), "slice_backward", "gradient of shape ", g.shape(),
        " does not fit a slice of dim ", d, " of shape ", shape);
  check(step > 0 && start >= 0, "slice_backward", "start ", start, " and step ", step, " must be >= 0 and > 0 (shape ",
        shape, ")");
  const bool fits = len == 0 || (start < shape[d] && len - 1 <= (shape[d] - 1 - start) / step);
  check(fits, "slice_backward", "a slice of length ",
        len, " from start ", start, " with step ", step, " does not fit dim ", d, " of shape ", shape, " (gradient shape ",
        g.shape(), ")");
  auto out = Tensor<T>::empty(shape);
  backend::slice_pad(g, d, start, step, len, out);
  const std::int64_t end = len == 0 ? start : start + (len - 1) * step + 1;
  return detail::record_if_floating(
      "slice_backward", std::move(out), {g},
      [d, start, end, step](const auto& gg, auto& c) { c.set(0, slice(gg, d, start, end, step)); },
      [shape, d, start, step](const auto& c) { return slice_backward(c.tangent(0), shape, d, start, step); });
}

/// x[..., start:end:step, ...] along dim, with Python semantics: negative start/end count from
/// the end, both are clamped to the extent, step must be positive.
template <Element T>
Tensor<T> slice(const Tensor<T>& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) {
  const int d = detail::dim_in_shape(x.shape(), dim, "slice");
  check(step > 0, "slice", "step must be positive, got ", step, " (shape ", x.shape(), ")");
  const auto r = detail::slice_range(x.shape()[d], start, end, step);
  if (r.start == 0 && r.step == 1 && r.length == x.shape()[d]) return x;
  const std::int64_t stop = r.length == 0 ? r.start : r.start + (r.length - 1) * r.step + 1;
  return detail::record_if_floating(
      "slice", detail::slice_range_copy(x, d, r), {x},
      [d, r](const auto& g, auto& c) { c.set(0, slice_backward(g, c.input(0).shape(), d, r.start, r.step)); },
      [d, r, stop](const auto& c) { return slice(c.tangent(0), d, r.start, stop, r.step); });
}

/// length elements of dim starting at start (which may be negative); must lie inside the dim.
template <Element T>
Tensor<T> narrow(const Tensor<T>& x, std::int64_t dim, std::int64_t start, std::int64_t length) {
  const int d = detail::dim_in_shape(x.shape(), dim, "narrow");
  const std::int64_t n = x.shape()[d];
  check(start >= -n && start <= n, "narrow", "start ", start, " is out of range for dim ", d, " of shape ", x.shape());
  if (start < 0) start += n;
  check(length >= 0 && length <= n - start, "narrow", "start ", start, " + length ", length, " exceeds dim ", d,
        " of shape ", x.shape());
  return slice(x, d, start, start + length);
}

/// The slice of x at position `index` along dim, with that dim removed (index may be negative).
template <Element T>
Tensor<T> select(const Tensor<T>& x, std::int64_t dim, std::int64_t index) {
  const int d = detail::dim_in_shape(x.shape(), dim, "select");
  const std::int64_t n = x.shape()[d];
  check(index >= -n && index < n, "select", "index ", index, " is out of range for dim ", d, " of shape ", x.shape());
  if (index < 0) index += n;
  return squeeze(slice(x, d, index, index + 1), d);
}

// ---------------------------------------------------------------------------------------------
// concat, stack and their inverses

namespace detail {
/// Shapes must agree except along `dim`; returns the output extent offsets of each piece.
template <Element T>
std::vector<std::int64_t> concat_offsets(const std::vector<Tensor<T>>& xs, int d, const char* op) {
  std::vector<std::int64_t> offsets{0};
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    check(s.rank() == xs[0].dim() && with_extent(s, d, 1) == with_extent(xs[0].shape(), d, 1), op, "tensor ", i,
          " has shape ", s, " but tensor 0 has shape ", xs[0].shape(), "; they must match except in dim ", d);
    offsets.push_back(offsets.back() + s[d]);
  }
  return offsets;
}

template <Element T>
Tensor<T> concat_copy(const std::vector<Tensor<T>>& xs, int d, const std::vector<std::int64_t>& offsets) {
  auto out = Tensor<T>::empty(with_extent(xs[0].shape(), d, offsets.back()));
  backend::concat_copy(xs, d, offsets, out);
  return out;
}
}  // namespace detail

/// The tensors joined along dim; their shapes must agree in every other dim.
template <Element T>
Tensor<T> concat(const std::vector<Tensor<T>>& xs, std::int64_t dim = 0) {
  check(!xs.empty(), "concat", "needs at least one tensor");
  const int d = detail::dim_in_shape(xs[0].shape(), dim, "concat");
  auto offsets = detail::concat_offsets(xs, d, "concat");
  if (xs.size() == 1) return xs[0];
  auto out = detail::concat_copy(xs, d, offsets);
  return detail::record_if_floating(
      "concat", std::move(out), std::span<const Tensor<T>>(xs),
      [d, offsets = std::move(offsets)](const auto& g, auto& c) {
        for (std::size_t i = 0; i + 1 < offsets.size(); ++i)
          if (c.wants(i)) c.set(i, slice(g, d, offsets[i], offsets[i + 1]));
      },
      [d](const auto& c) {
        std::vector<std::decay_t<decltype(c.input(0))>> pieces;
        for (std::size_t i = 0; i < c.size(); ++i) pieces.push_back(c.tangent_or_zeros(i));
        return concat(pieces, d);
      });
}

/// The tensors, all of one shape, joined along a new dim at position dim (in [-rank-1, rank]).
template <Element T>
Tensor<T> stack(const std::vector<Tensor<T>>& xs, std::int64_t dim = 0) {
  check(!xs.empty(), "stack", "needs at least one tensor");
  const Shape& s = xs[0].shape();
  check(dim >= -s.rank() - 1 && dim <= s.rank(), "stack", "dim ", dim, " is out of range for stacking tensors of shape ", s);
  const int d = static_cast<int>(dim < 0 ? dim + s.rank() + 1 : dim);
  Shape unit;  // each piece seen with the new dim of extent 1
  for (int i = 0; i <= s.rank(); ++i) {
    if (i == d) unit.push_back(1);
    if (i < s.rank()) unit.push_back(s[i]);
  }
  std::vector<Tensor<T>> views;
  views.reserve(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    check(xs[i].shape() == s, "stack", "tensor ", i, " has shape ", xs[i].shape(), " but tensor 0 has shape ", s,
          "; all must have the same shape");
    views.push_back(detail::view_as_shape(xs[i], unit));
  }
  std::vector<std::int64_t> offsets(xs.size() + 1);
  for (std::size_t i = 0; i < offsets.size(); ++i) offsets[i] = static_cast<std::int64_t>(i);
  return detail::record_if_floating(
      "stack", detail::concat_copy(views, d, offsets), std::span<const Tensor<T>>(xs),
      [d](const auto& g, auto& c) {
        for (std::int64_t i = 0; i < g.shape()[d]; ++i)
          if (c.wants(static_cast<std::size_t>(i))) c.set(static_cast<std::size_t>(i), select(g, d, i));
      },
      [d](const auto& c) {
        std::vector<std::decay_t<decltype(c.input(0))>> pieces;
        for (std::size_t i = 0; i < c.size(); ++i) pieces.push_back(c.tangent_or_zeros(i));
        return stack(pieces, d);
      });
}

/// x cut along dim into pieces of the given sizes, which must add up to the extent.
template <Element T>
std::vector<Tensor<T>> split(const Tensor<T>& x, const std::vector<std::int64_t>& sizes, std::int64_t dim = 0) {
  const int d = detail::dim_in_shape(x.shape(), dim, "split");
  std::int64_t total = 0;
  for (auto n : sizes) {
    check(n >= 0, "split", "negative size ", n, " for shape ", x.shape());
    total += n;
  }
  check(total == x.shape()[d], "split", "sizes add up to ", total, " but dim ", d, " of shape ", x.shape(), " has extent ",
        x.shape()[d]);
  std::vector<Tensor<T>> out;
  out.reserve(sizes.size());
  std::int64_t at = 0;
  for (auto n : sizes) {
    out.push_back(slice(x, d, at, at + n));
    at += n;
  }
  return out;
}

/// x cut along dim into pieces of `size` elements (the last may be shorter).
template <Element T>
std::vector<Tensor<T>> split(const Tensor<T>& x, std::int64_t size, std::int64_t dim = 0) {
  const int d = detail::dim_in_shape(x.shape(), dim, "split");
  check(size > 0, "split", "size must be positive, got ", size, " (shape ", x.shape(), ")");
  std::vector<std::int64_t> sizes;
  for (std::int64_t at = 0; at < x.shape()[d]; at += size) sizes.push_back(std::min(size, x.shape()[d] - at));
  return split(x, sizes, d);
}

/// x cut along dim into `chunks` pieces of ceil(extent / chunks) elements, as torch.chunk: fewer
/// pieces come back when the extent does not need them all.
template <Element T>
std::vector<Tensor<T>> chunk(const Tensor<T>& x, std::int64_t chunks, std::int64_t dim = 0) {
  const int d = detail::dim_in_shape(x.shape(), dim, "chunk");
  check(chunks > 0, "chunk", "chunks must be positive, got ", chunks, " (shape ", x.shape(), ")");
  const std::int64_t n = x.shape()[d];
  return n == 0 ? std::vector<Tensor<T>>{x} : split(x, (n + chunks - 1) / chunks, d);
}

/// Every slice of x along dim, with that dim removed (the inverse of stack).
template <Element T>
std::vector<Tensor<T>> unbind(const Tensor<T>& x, std::int64_t dim = 0) {
  const int d = detail::dim_in_shape(x.shape(), dim, "unbind");
  std::vector<Tensor<T>> out;
  out.reserve(static_cast<std::size_t>(x.shape()[d]));
  for (std::int64_t i = 0; i < x.shape()[d]; ++i) out.push_back(select(x, d, i));
  return out;
}

// ---------------------------------------------------------------------------------------------
// flip, repeat, expand, clone

/// x reversed along each of dims.
template <Element T>
Tensor<T> flip(const Tensor<T>& x, const std::vector<std::int64_t>& dims) {
  std::array<bool, kMaxRank> flipped{};
  for (auto dim : dims) {
    const int d = detail::dim_in_shape(x.shape(), dim, "flip");
    check(!flipped[static_cast<std::size_t>(d)], "flip", "dim ", d, " is repeated for shape ", x.shape());
    flipped[static_cast<std::size_t>(d)] = true;
  }
  auto out = Tensor<T>::empty(x.shape());
  backend::flip_copy(x, flipped, out);
  return detail::record_if_floating(
      "flip", std::move(out), {x}, [dims](const auto& g, auto& c) { c.set(0, flip(g, dims)); },
      [dims](const auto& c) { return flip(c.tangent(0), dims); });
}

/// x tiled reps[i] times along dim i, as torch.repeat; extra leading reps add leading dims.
/// Built from reshape + broadcast_to, so its gradient (a sum over the copies) comes for free.
template <Element T>
Tensor<T> repeat(const Tensor<T>& x, const std::vector<std::int64_t>& reps) {
  const int r = static_cast<int>(reps.size());
  check(r >= x.dim(), "repeat", reps.size(), " repeats given for a tensor of shape ", x.shape(), "; need at least ", x.dim());
  Shape unit, tiled, out;  // x with a 1 before every repeated dim; that 1 broadcast to the repeat count
  for (int i = 0; i < r; ++i) {
    const std::int64_t rep = reps[static_cast<std::size_t>(i)];
    const std::int64_t n = i < r - x.dim() ? 1 : x.shape()[i - (r - x.dim())];
    check(rep >= 0, "repeat", "negative repeat ", rep, " for shape ", x.shape());
    check(unit.rank() + (rep != 1) + 1 <= kMaxRank, "repeat", "needs more than ", kMaxRank, " dims internally for shape ",
          x.shape(), " (too many dims repeated)");
    if (rep != 1) {
      unit.push_back(1);
      tiled.push_back(rep);
    }
    unit.push_back(n);
    tiled.push_back(n);
    out.push_back(n * rep);
  }
  const Tensor<T> u = reshape(x, unit);
  if constexpr (Floating<T>) return reshape(broadcast_to(u, tiled), out);
  else return reshape(backend::broadcast_copy(u, tiled), out);
}

/// broadcast_to under torch's name; an extent of -1 keeps x's extent.
template <Floating T>
Tensor<T> expand(const Tensor<T>& x, const std::vector<std::int64_t>& sizes) {
  const int r = static_cast<int>(sizes.size());
  check(r >= x.dim(), "expand", "target of ", sizes.size(), " dims for a tensor of shape ", x.shape());
  Shape target;
  for (int i = 0; i < r; ++i) {
    const std::int64_t s = sizes[static_cast<std::size_t>(i)];
    const int xi = i - (r - x.dim());
    check(s >= 0 || (s == -1 && xi >= 0), "expand", "invalid extent ", s, " at dim ", i, " for shape ", x.shape());
    target.push_back(s == -1 ? x.shape()[xi] : s);
  }
  return broadcast_to(x, target);
}

/// A differentiable copy of x with its own storage.
template <Element T>
Tensor<T> clone(const Tensor<T>& x) {
  auto out = Tensor<T>::empty(x.shape());
  backend::copy(x, out);
  return detail::record_if_floating(
      "clone", std::move(out), {x}, [](const auto& g, auto& c) { c.set(0, g); },
      [](const auto& c) { return c.tangent(0); });
}

}  // namespace metagrad
