// SPDX-License-Identifier: MIT
// Forward mode: a tensor may carry a tangent, the directional derivative of its value along some
// input direction. make_dual attaches one, every op's tangent rule (record(), node.hpp) computes
// its output's tangent from its inputs' -- a dual-number pass, as torch.autograd.forward_ad --
// and tangent_of reads it. Tangent rules are ops, independent of GradMode and requires_grad, so:
//   - J·v costs one pass with tangents (no tape needed, under no_grad too);
//   - forward-over-reverse: backward rules are ops too, so a gradient computed from a dual input
//     carries H·v as its tangent, at about the cost of one more gradient (functional/hvp);
//   - tangents are differentiable again in reverse mode (tangent computations are recorded like
//     any op), and a tangent may itself carry a tangent.
// There is one dual level (no nested levels object): a tangent is a property of a tensor.
// In-place writes to a tensor with a tangent are refused (Tensor::mutable_data): they would change
// the value and leave its derivative stale.
#pragma once
#include <algorithm>

#include "metagrad/autograd/node.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad {

/// A tensor with primal's values (sharing its storage) and `tangent` as its forward-mode tangent.
/// Gradients flow through it to primal, so reverse mode still reaches primal. The tangent must
/// have primal's shape and device; it may require grad (the tangents derived from it are then
/// differentiable in it) and may carry a tangent of its own.
template <Floating T>
Tensor<T> make_dual(const Tensor<T>& primal, const Tensor<T>& tangent) {
  check(primal.defined(), "make_dual", "the primal is an undefined tensor");
  check(tangent.defined(), "make_dual", "the tangent is an undefined tensor (primal of shape ", primal.shape(), ")");
  check(tangent.shape() == primal.shape(), "make_dual", "tangent of shape ", tangent.shape(),
        " does not match the primal of shape ", primal.shape());
  check(tangent.device() == primal.device(), "make_dual", "tangent on ", tangent.device(), " but the primal of shape ",
        primal.shape(), " is on ", primal.device());
  Tensor<T> dual = record(
      "make_dual", detail::view_as_shape(primal, primal.shape()), {primal},
      [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, g); },
      // The primal's own tangent, if any, is replaced below.
      [](const TangentContext<T>&) { return Tensor<T>(); });
  dual.impl()->tangent = tangent.impl();
  return dual;
}

/// t's forward-mode tangent; undefined when t has none (a zero tangent).
template <Floating T>
Tensor<T> tangent_of(const Tensor<T>& t) {
  check(t.defined(), "tangent_of", "undefined tensor");
  return t.tangent();
}

/// t's tangent, or zeros of t's shape when it has none.
template <Floating T>
Tensor<T> tangent_or_zeros(const Tensor<T>& t) {
  Tensor<T> v = tangent_of(t);
  if (v.defined()) return v;
  auto z = Tensor<T>::empty(t.shape());
  std::fill_n(z.fresh_data(), z.numel(), T(0));
  return z;
}

}  // namespace metagrad
