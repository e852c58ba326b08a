// SPDX-License-Identifier: MIT
// broadcast_to and sum_to: each is the other's gradient. Binary ops call sum_to in their backward
// rules to undo broadcasting.
#pragma once
#include "metagrad/autograd/node.hpp"
#include "metagrad/backend/copy.hpp"
#include "metagrad/backend/reduce.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad {

template <Floating T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape);

/// A copy of x expanded to `shape` under NumPy broadcasting rules.
template <Floating T>
Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  check(broadcast_shapes(x.shape(), shape, "broadcast_to") == shape, "broadcast_to", "shape ", x.shape(),
        " cannot be broadcast to ", shape);
  return record(
      "broadcast_to", backend::broadcast_copy(x, shape), {x},
      [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, sum_to(g, c.input(0).shape())); },
      [](const TangentContext<T>& c) { return broadcast_to(c.tangent(0), c.output_shape()); });
}

/// Sums x down to `shape`, which x's shape must broadcast from (the adjoint of broadcast_to).
template <Floating T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  check(broadcast_shapes(shape, x.shape(), "sum_to") == x.shape(), "sum_to", "shape ", x.shape(),
        " cannot be summed to ", shape);
  Tensor<T> r = x.detach();
  const int lead = x.dim() - shape.rank();
  if (lead > 0) {
    std::int64_t outer = 1;
    for (int i = 0; i < lead; ++i) outer *= x.shape()[i];
    Shape rest{outer};
    for (int i = lead; i < x.dim(); ++i) rest.push_back(x.shape()[i]);
    r = backend::sum_dim(detail::view_as_shape(r, rest), 0, false);
  }
  for (int i = 0; i < shape.rank(); ++i)
    if (shape[i] == 1 && r.shape()[i] != 1) r = backend::sum_dim(r, i, true);
  return record(
      "sum_to", std::move(r), {x},
      [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, broadcast_to(g, c.input(0).shape())); },
      [](const TangentContext<T>& c) { return sum_to(c.tangent(0), c.output_shape()); });
}

}  // namespace metagrad
