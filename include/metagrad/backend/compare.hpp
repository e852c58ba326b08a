// SPDX-License-Identifier: MIT
// Backend facade, comparison family: 0/1 masks of a comparison, of two tensors (broadcast) or of
// a tensor and a constant, in the tensors' element type; and where. See dispatch.hpp.
#pragma once
#include "metagrad/backend/cpu/binary.hpp"
#include "metagrad/backend/cpu/unary.hpp"
#include "metagrad/backend/dispatch.hpp"
#include "metagrad/backend/types.hpp"

namespace metagrad::backend {

/// The mask of a C b, broadcast to out.
template <Compare C, Element T>
Tensor<T> compare(const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return dispatch("compare", [&] { return cpu::compare_mask<C>(a, b, out); }, a, b);
}
/// The mask of x C s.
template <Compare C, Element T>
Tensor<T> compare(const Tensor<T>& x, T s) {
  return dispatch("compare", [&] { return cpu::compare_scalar<C>(x, s); }, x);
}
/// cond != 0 ? a : b, broadcast to out.
template <Floating T>
Tensor<T> where(const Tensor<T>& cond, const Tensor<T>& a, const Tensor<T>& b, const Shape& out) {
  return dispatch("where", [&] { return cpu::where(cond, a, b, out); }, cond, a, b);
}

}  // namespace metagrad::backend
