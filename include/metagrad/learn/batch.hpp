// SPDX-License-Identifier: MIT
// A minibatch as every learn/ loss sees it: inputs, labels, the human annotation (a mask of the
// features marked irrelevant) and group ids for per-group metrics. Also the shared input checks,
// so every loss rejects a bad batch with the same message naming the loss and the shapes.
#pragma once
#include <cstdint>
#include <vector>

#include "metagrad/core/creation.hpp"
#include "metagrad/core/error.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/explain/explainer.hpp"

namespace metagrad::learn {

template <Floating T>
struct Batch {
  Tensor<T> x;        ///< inputs [N, ...]
  IndexTensor y;      ///< labels [N]
  Tensor<T> mask;     ///< x's shape: 1 on features a human marked irrelevant, 0 elsewhere; may be undefined
  IndexTensor group;  ///< [N] group ids for metrics; may be undefined
};

namespace detail {

using metagrad::detail::run_model;

/// The module behind a model given by reference or (smart) pointer.
template <class M>
decltype(auto) module_of(M& model) {
  if constexpr (requires { *model; }) return (*model);
  else return (model);
}

/// x is a non-empty batch and y gives one label per example.
template <Floating T>
void check_batch(const Batch<T>& b, const char* op) {
  check(b.x.defined() && b.x.dim() >= 1 && b.x.size(0) > 0, op, "needs a batch of inputs [N, ...], got ",
        b.x.defined() ? b.x.shape() : Shape{});
  check(b.y.defined() && b.y.dim() == 1 && b.y.size(0) == b.x.size(0), op, "labels ",
        b.y.defined() ? b.y.shape() : Shape{}, " do not give one label per example of the inputs ", b.x.shape());
  check(!b.group.defined() || (b.group.dim() == 1 && b.group.size(0) == b.x.size(0)), op, "groups ",
        b.group.defined() ? b.group.shape() : Shape{}, " do not give one group per example of the inputs ",
        b.x.shape());
}

/// As check_batch, and the batch carries a mask of x's shape (the losses that use the annotation).
template <Floating T>
void check_masked_batch(const Batch<T>& b, const char* op) {
  check_batch(b, op);
  check(b.mask.defined(), op, "needs a mask of the input's shape ", b.x.shape(), ", got none");
  check(b.mask.shape() == b.x.shape(), op, "mask ", b.mask.shape(), " must have the input's shape ", b.x.shape());
}

/// Logits [N, C] for the batch's N examples, with every label in [0, C).
template <Floating T>
void check_labels(const Tensor<T>& z, const IndexTensor& y, const char* op) {
  check(z.dim() == 2 && z.size(0) == y.size(0), op, "the model must return logits [", y.size(0), ", classes], got ",
        z.shape());
  const std::int64_t classes = z.size(1);
  const std::int64_t* label = y.data();
  for (std::int64_t i = 0; i < y.numel(); ++i)
    check(label[i] >= 0 && label[i] < classes, op, "label ", label[i], " of example ", i, " is out of range [0, ",
          classes, ") for logits ", z.shape());
}

/// y[rows] (labels are never differentiated, so a plain copy).
inline IndexTensor select_labels(const IndexTensor& y, const IndexTensor& rows) {
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(rows.numel()));
  for (std::int64_t i = 0; i < rows.numel(); ++i) out.push_back(y.data()[rows.data()[i]]);
  return from_vector<std::int64_t>(out, Shape{rows.numel()});
}

/// The model's logits at x, checked against the labels.
template <Floating T, class M>
Tensor<T> logits_of(M& model, const Tensor<T>& x, const IndexTensor& y, const char* op) {
  auto z = run_model<T>(model, x);
  check_labels(z, y, op);
  return z;
}

}  // namespace detail
}  // namespace metagrad::learn
