// SPDX-License-Identifier: MIT
// Ops that reinterpret a contiguous tensor's shape without copying: reshape, flatten, squeeze,
// unsqueeze. Their gradients reshape back.
#pragma once
#include <vector>

#include "metagrad/autograd/node.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad {

namespace detail {
/// Resolves one -1 extent and checks the element count.
inline Shape infer_shape(const Shape& from, std::span<const std::int64_t> dims, const char* op) {
  Shape out;
  int infer = -1;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      check(infer < 0, op, "only one dim of the target shape may be -1");
      infer = static_cast<int>(i);
      out.push_back(0);
    } else {
      check(dims[i] >= 0, op, "invalid extent ", dims[i], " in target shape");
      known *= dims[i];
      out.push_back(dims[i]);
    }
  }
  if (infer >= 0) {
    check(known > 0 && from.numel() % known == 0, op, "cannot reshape ", from, " with a -1 into ", from.numel(),
          " / ", known);
    out[infer] = from.numel() / known;
  }
  check(out.numel() == from.numel(), op, "cannot reshape tensor of shape ", from, " (", from.numel(),
        " elements) into ", out, " (", out.numel(), " elements)");
  return out;
}

template <Element T>
Tensor<T> view_as_shape(const Tensor<T>& x, const Shape& shape) {
  auto impl = std::make_shared<TensorImpl<T>>();
  impl->storage = x.impl()->storage;
  impl->offset = x.impl()->offset;
  impl->device = x.impl()->device;
  impl->shape = shape;
  return Tensor<T>(std::move(impl));
}
}  // namespace detail

/// Same elements in a new shape (one extent may be -1); shares storage with x.
template <Element T>
Tensor<T> reshape(const Tensor<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const Shape target = detail::infer_shape(x.shape(), shape.dims(), "reshape");
  auto out = detail::view_as_shape(x, target);
  if constexpr (Floating<T>) {
    return record(
        "reshape", std::move(out), {x},
        [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, reshape(g, c.input(0).shape())); },
        [target](const TangentContext<T>& c) { return reshape(c.tangent(0), target); });
  } else {
    return out;
  }
}
template <Element T>
Tensor<T> reshape(const Tensor<T>& x, std::initializer_list<std::int64_t> dims) {
  return reshape(x, detail::infer_shape(x.shape(), std::span<const std::int64_t>(dims.begin(), dims.size()), "reshape"));
}

/// Collapses dims start..end (inclusive) into one.
template <Element T>
Tensor<T> flatten(const Tensor<T>& x, std::int64_t start = 0, std::int64_t end = -1) {
  if (x.dim() == 0) return reshape(x, Shape{1});
  const int s = normalize_dim(start, x.dim(), "flatten"), e = normalize_dim(end, x.dim(), "flatten");
  check(s <= e, "flatten", "start dim ", start, " is after end dim ", end, " for shape ", x.shape());
  Shape out;
  for (int i = 0; i < s; ++i) out.push_back(x.shape()[i]);
  std::int64_t mid = 1;
  for (int i = s; i <= e; ++i) mid *= x.shape()[i];
  out.push_back(mid);
  for (int i = e + 1; i < x.dim(); ++i) out.push_back(x.shape()[i]);
  return reshape(x, out);
}

/// Inserts a dim of extent 1 at `dim` (in [-rank-1, rank]).
template <Element T>
Tensor<T> unsqueeze(const Tensor<T>& x, std::int64_t dim) {
  const int d = normalize_dim(dim, x.dim() + 1, "unsqueeze");
  Shape out;
  for (int i = 0; i < x.dim(); ++i) {
    if (i == d) out.push_back(1);
    out.push_back(x.shape()[i]);
  }
  if (d == x.dim()) out.push_back(1);
  return reshape(x, out);
}

/// Removes dim `dim`, which must have extent 1.
template <Element T>
Tensor<T> squeeze(const Tensor<T>& x, std::int64_t dim) {
  const int d = normalize_dim(dim, x.dim(), "squeeze");
  if (x.dim() == 0) return x;  // a scalar has no dim to remove (PyTorch returns it unchanged)
  check(x.shape()[d] == 1, "squeeze", "dim ", dim, " of shape ", x.shape(), " has extent ", x.shape()[d], ", not 1");
  Shape out;
  for (int i = 0; i < x.dim(); ++i)
    if (i != d) out.push_back(x.shape()[i]);
  return reshape(x, out);
}

/// Removes every dim of extent 1.
template <Element T>
Tensor<T> squeeze(const Tensor<T>& x) {
  Shape out;
  for (int i = 0; i < x.dim(); ++i)
    if (x.shape()[i] != 1) out.push_back(x.shape()[i]);
  return reshape(x, out);
}

}  // namespace metagrad
