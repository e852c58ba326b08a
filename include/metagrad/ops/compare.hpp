// SPDX-License-Identifier: MIT
// Comparisons (eq, ne, lt, le, gt, ge) with broadcasting and scalar forms, sign, and finiteness
// tests. They return 0/1 tensors of the input's element type, so a result is a mask that mul and
// where take directly. None of them records: the result is a constant with no grad_fn (even when
// an input requires grad), which is exact wherever their derivative exists, as it is zero there.
#pragma once
#include <type_traits>

#include "metagrad/backend/compare.hpp"
#include "metagrad/backend/unary.hpp"

namespace metagrad {

namespace detail {
template <backend::Compare C, Element T>
Tensor<T> compare(const Tensor<T>& a, const Tensor<T>& b, const char* op) {
  return backend::compare<C>(a, b, broadcast_shapes(a.shape(), b.shape(), op));
}
template <backend::Compare C, Element T>
Tensor<T> compare(const Tensor<T>& a, T s) {
  return backend::compare<C>(a, T(s));
}
}  // namespace detail

/// 1 where a == b, else 0 (broadcasting).
template <Element T>
Tensor<T> eq(const Tensor<T>& a, const Tensor<T>& b) { return detail::compare<backend::Compare::eq>(a, b, "eq"); }
template <Element T>
Tensor<T> eq(const Tensor<T>& a, std::type_identity_t<T> s) { return detail::compare<backend::Compare::eq>(a, T(s)); }

/// 1 where a != b, else 0 (so 1 where either side is NaN).
template <Element T>
Tensor<T> ne(const Tensor<T>& a, const Tensor<T>& b) { return detail::compare<backend::Compare::ne>(a, b, "ne"); }
template <Element T>
Tensor<T> ne(const Tensor<T>& a, std::type_identity_t<T> s) { return detail::compare<backend::Compare::ne>(a, T(s)); }

/// 1 where a < b, else 0.
template <Element T>
Tensor<T> lt(const Tensor<T>& a, const Tensor<T>& b) { return detail::compare<backend::Compare::lt>(a, b, "lt"); }
template <Element T>
Tensor<T> lt(const Tensor<T>& a, std::type_identity_t<T> s) { return detail::compare<backend::Compare::lt>(a, T(s)); }

/// 1 where a <= b, else 0.
template <Element T>
Tensor<T> le(const Tensor<T>& a, const Tensor<T>& b) { return detail::compare<backend::Compare::le>(a, b, "le"); }
template <Element T>
Tensor<T> le(const Tensor<T>& a, std::type_identity_t<T> s) { return detail::compare<backend::Compare::le>(a, T(s)); }

/// 1 where a > b, else 0.
template <Element T>
Tensor<T> gt(const Tensor<T>& a, const Tensor<T>& b) { return detail::compare<backend::Compare::gt>(a, b, "gt"); }
template <Element T>
Tensor<T> gt(const Tensor<T>& a, std::type_identity_t<T> s) { return detail::compare<backend::Compare::gt>(a, T(s)); }

/// 1 where a >= b, else 0.
template <Element T>
Tensor<T> ge(const Tensor<T>& a, const Tensor<T>& b) { return detail::compare<backend::Compare::ge>(a, b, "ge"); }
template <Element T>
Tensor<T> ge(const Tensor<T>& a, std::type_identity_t<T> s) { return detail::compare<backend::Compare::ge>(a, T(s)); }

/// -1, 0 or 1 by the sign of x; NaN stays NaN (as in NumPy; PyTorch returns 0 there).
template <Floating T>
Tensor<T> sign(const Tensor<T>& x) {
  return backend::sign(x);
}

/// 1 where x is finite (not NaN, not ±inf), else 0.
template <Floating T>
Tensor<T> is_finite(const Tensor<T>& x) {
  return backend::is_finite(x);
}

/// 1 where x is NaN, else 0.
template <Floating T>
Tensor<T> is_nan(const Tensor<T>& x) {
  return backend::is_nan(x);
}

/// Whether every element of x is finite (true for an empty tensor).
template <Floating T>
bool all_finite(const Tensor<T>& x) {
  return backend::all_finite(x);
}

}  // namespace metagrad
