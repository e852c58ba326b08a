// SPDX-License-Identifier: MIT
// Comparisons (eq, ne, lt, le, gt, ge) with broadcasting and scalar forms, sign, and finiteness
// tests. They return 0/1 tensors of the input's element type, so a result is a mask that mul and
// where take directly. None of them records: the result is a constant with no grad_fn (even when
// an input requires grad), which is exact wherever their derivative exists, as it is zero there.
#pragma once
#include <type_traits>

#include "metagrad/backend/cpu/elementwise.hpp"

namespace metagrad {

namespace detail {
template <cpu::Compare C, Element T>
Tensor<T> compare(const Tensor<T>& a, const Tensor<T>& b, const char* op) {
  return cpu::map_binary(a, b, broadcast_shapes(a.shape(), b.shape(), op),
                         [](const auto& x, const auto& y) { return cpu::compare<C>(x, y); });
}
template <cpu::Compare C, Element T>
Tensor<T> compare(const Tensor<T>& a, T s) {
  return cpu::map_unary(a, [s](const auto& x) { return cpu::compare<C>(x, s); });
}
}  // namespace detail

/// 1 where a == b, else 0 (broadcasting).
template <Element T>
Tensor<T> eq(const Tensor<T>& a, const Tensor<T>& b) { return detail::compare<cpu::Compare::eq>(a, b, "eq"); }
template <Element T>
Tensor<T> eq(const Tensor<T>& a, std::type_identity_t<T> s) { return detail::compare<cpu::Compare::eq>(a, T(s)); }

/// 1 where a != b, else 0 (so 1 where either side is NaN).
template <Element T>
Tensor<T> ne(const Tensor<T>& a, const Tensor<T>& b) { return detail::compare<cpu::Compare::ne>(a, b, "ne"); }
template <Element T>
Tensor<T> ne(const Tensor<T>& a, std::type_identity_t<T> s) { return detail::compare<cpu::Compare::ne>(a, T(s)); }

/// 1 where a < b, else 0.
template <Element T>
Tensor<T> lt(const Tensor<T>& a, const Tensor<T>& b) { return detail::compare<cpu::Compare::lt>(a, b, "lt"); }
template <Element T>
Tensor<T> lt(const Tensor<T>& a, std::type_identity_t<T> s) { return detail::compare<cpu::Compare::lt>(a, T(s)); }

/// 1 where a <= b, else 0.
template <Element T>
Tensor<T> le(const Tensor<T>& a, const Tensor<T>& b) { return detail::compare<cpu::Compare::le>(a, b, "le"); }
template <Element T>
Tensor<T> le(const Tensor<T>& a, std::type_identity_t<T> s) { return detail::compare<cpu::Compare::le>(a, T(s)); }

/// 1 where a > b, else 0.
template <Element T>
Tensor<T> gt(const Tensor<T>& a, const Tensor<T>& b) { return detail::compare<cpu::Compare::gt>(a, b, "gt"); }
template <Element T>
Tensor<T> gt(const Tensor<T>& a, std::type_identity_t<T> s) { return detail::compare<cpu::Compare::gt>(a, T(s)); }

/// 1 where a >= b, else 0.
template <Element T>
Tensor<T> ge(const Tensor<T>& a, const Tensor<T>& b) { return detail::compare<cpu::Compare::ge>(a, b, "ge"); }
template <Element T>
Tensor<T> ge(const Tensor<T>& a, std::type_identity_t<T> s) { return detail::compare<cpu::Compare::ge>(a, T(s)); }

/// -1, 0 or 1 by the sign of x; NaN stays NaN (as in NumPy; PyTorch returns 0 there).
template <Floating T>
Tensor<T> sign(const Tensor<T>& x) {
  using cpu::Compare;
  return cpu::map_unary(x, [](const auto& a) {
    return cpu::select(cpu::compare<Compare::ne>(a, a), a, cpu::compare<Compare::gt>(a, T(0)) - cpu::compare<Compare::lt>(a, T(0)));
  });
}

/// 1 where x is finite (not NaN, not ±inf), else 0.
template <Floating T>
Tensor<T> is_finite(const Tensor<T>& x) {
  // x - x is 0 for finite x and NaN for NaN or ±inf.
  return cpu::map_unary(x, [](const auto& a) { return cpu::compare<cpu::Compare::eq>(a - a, T(0)); });
}

/// 1 where x is NaN, else 0.
template <Floating T>
Tensor<T> is_nan(const Tensor<T>& x) {
  return cpu::map_unary(x, [](const auto& a) { return cpu::compare<cpu::Compare::ne>(a, a); });
}

/// Whether every element of x is finite (true for an empty tensor).
template <Floating T>
bool all_finite(const Tensor<T>& x) {
  return cpu::ConstArrayMap<T>(x.data(), x.numel()).isFinite().all();
}

}  // namespace metagrad
