// SPDX-License-Identifier: MIT
// add, sub, mul, div, neg with NumPy broadcasting and scalar forms, and the C++ operators for
// them. The operators are constrained to one element type: Tensor<float> + Tensor<double> does
// not compile.
#pragma once
#include <type_traits>

#include "metagrad/backend/binary.hpp"
#include "metagrad/backend/unary.hpp"
#include "metagrad/ops/broadcast.hpp"

namespace metagrad {

namespace detail {
/// a + b for tangent terms, an undefined one counting as zero; a lone term is broadcast to shape.
template <Floating T>
Tensor<T> add_terms(const Tensor<T>& a, const Tensor<T>& b, const Shape& shape);
/// a - b likewise.
template <Floating T>
Tensor<T> sub_terms(const Tensor<T>& a, const Tensor<T>& b, const Shape& shape);
}  // namespace detail

template <Floating T>
Tensor<T> neg(const Tensor<T>& x) {
  return record("neg", backend::neg(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, neg(g)); },
                [](const TangentContext<T>& c) { return neg(c.tangent(0)); });
}

template <Floating T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) {
  const Shape out = broadcast_shapes(a.shape(), b.shape(), "add");
  return record("add", backend::add(a, b, out), {a, b},
                [](const Tensor<T>& g, BackwardContext<T>& c) {
                  if (c.wants(0)) c.set(0, sum_to(g, c.input(0).shape()));
                  if (c.wants(1)) c.set(1, sum_to(g, c.input(1).shape()));
                },
                [](const TangentContext<T>& c) { return detail::add_terms(c.tangent(0), c.tangent(1), c.output_shape()); });
}

template <Floating T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) {
  const Shape out = broadcast_shapes(a.shape(), b.shape(), "sub");
  return record("sub", backend::sub(a, b, out), {a, b},
                [](const Tensor<T>& g, BackwardContext<T>& c) {
                  if (c.wants(0)) c.set(0, sum_to(g, c.input(0).shape()));
                  if (c.wants(1)) c.set(1, neg(sum_to(g, c.input(1).shape())));
                },
                [](const TangentContext<T>& c) { return detail::sub_terms(c.tangent(0), c.tangent(1), c.output_shape()); });
}

template <Floating T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) {
  const Shape out = broadcast_shapes(a.shape(), b.shape(), "mul");
  return record("mul", backend::mul(a, b, out), {a, b},
                [](const Tensor<T>& g, BackwardContext<T>& c) {
                  if (c.wants(0)) c.set(0, sum_to(mul(g, c.input(1)), c.input(0).shape()));
                  if (c.wants(1)) c.set(1, sum_to(mul(g, c.input(0)), c.input(1).shape()));
                },
                [](const TangentContext<T>& c) {
                  // d(ab) = da b + a db; each term has the output's (broadcast) shape.
                  const Tensor<T> da = c.has_tangent(0) ? mul(c.tangent(0), c.input(1)) : Tensor<T>();
                  const Tensor<T> db = c.has_tangent(1) ? mul(c.input(0), c.tangent(1)) : Tensor<T>();
                  return detail::add_terms(da, db, c.output_shape());
                });
}

template <Floating T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) {
  const Shape out = broadcast_shapes(a.shape(), b.shape(), "div");
  return record("div", backend::div(a, b, out), {a, b},
                [](const Tensor<T>& g, BackwardContext<T>& c) {
                  const auto& b = c.input(1);
                  const Tensor<T> g_over_b = div(g, b);
                  if (c.wants(0)) c.set(0, sum_to(g_over_b, c.input(0).shape()));
                  // d(a/b)/db = -a/b^2 = -(a/b)/b; the output is a/b.
                  if (c.wants(1)) c.set(1, neg(sum_to(mul(g_over_b, c.output()), b.shape())));
                },
                [](const TangentContext<T>& c) {
                  // d(a/b) = (da - (a/b) db) / b.
                  const Tensor<T> y_db = c.has_tangent(1) ? mul(c.output(), c.tangent(1)) : Tensor<T>();
                  return div(detail::sub_terms(c.tangent(0), y_db, c.output_shape()), c.input(1));
                });
}

// ---- scalar forms: the scalar is a constant, not a graph input ----

template <Floating T>
Tensor<T> add(const Tensor<T>& a, std::type_identity_t<T> s) {
  return record("add_scalar", backend::add_scalar(a, T(s)), {a},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, g); },
                [](const TangentContext<T>& c) { return c.tangent(0); });
}
template <Floating T>
Tensor<T> mul(const Tensor<T>& a, std::type_identity_t<T> s) {
  return record("mul_scalar", backend::mul_scalar(a, T(s)), {a},
                [s](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, mul(g, T(s))); },
                [s](const TangentContext<T>& c) { return mul(c.tangent(0), T(s)); });
}
template <Floating T>
Tensor<T> sub(const Tensor<T>& a, std::type_identity_t<T> s) { return add(a, T(-s)); }
template <Floating T>
Tensor<T> sub(std::type_identity_t<T> s, const Tensor<T>& a) { return add(neg(a), T(s)); }
template <Floating T>
Tensor<T> div(const Tensor<T>& a, std::type_identity_t<T> s) { return mul(a, T(T(1) / s)); }
/// s / a
template <Floating T>
Tensor<T> div(std::type_identity_t<T> s, const Tensor<T>& a) {
  return record("rdiv_scalar", backend::rdiv_scalar(a, T(s)), {a},
                [](const Tensor<T>& g, BackwardContext<T>& c) {
                  // d(s/a)/da = -(s/a)/a
                  c.set(0, neg(div(mul(g, c.output()), c.input(0))));
                },
                [](const TangentContext<T>& c) { return neg(div(mul(c.tangent(0), c.output()), c.input(0))); });
}

namespace detail {
template <Floating T>
Tensor<T> add_terms(const Tensor<T>& a, const Tensor<T>& b, const Shape& shape) {
  if (a.defined() && b.defined()) return broadcast_to(add(a, b), shape);
  if (a.defined()) return broadcast_to(a, shape);
  if (b.defined()) return broadcast_to(b, shape);
  return {};
}
template <Floating T>
Tensor<T> sub_terms(const Tensor<T>& a, const Tensor<T>& b, const Shape& shape) {
  if (a.defined() && b.defined()) return broadcast_to(sub(a, b), shape);
  if (a.defined()) return broadcast_to(a, shape);
  if (b.defined()) return broadcast_to(neg(b), shape);
  return {};
}
}  // namespace detail

// ---- operators ----
template <Floating T> Tensor<T> operator-(const Tensor<T>& a) { return neg(a); }
template <Floating T> Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) { return add(a, b); }
template <Floating T> Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) { return sub(a, b); }
template <Floating T> Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) { return mul(a, b); }
template <Floating T> Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) { return div(a, b); }
template <Floating T> Tensor<T> operator+(const Tensor<T>& a, std::type_identity_t<T> s) { return add(a, T(s)); }
template <Floating T> Tensor<T> operator+(std::type_identity_t<T> s, const Tensor<T>& a) { return add(a, T(s)); }
template <Floating T> Tensor<T> operator-(const Tensor<T>& a, std::type_identity_t<T> s) { return sub(a, T(s)); }
template <Floating T> Tensor<T> operator-(std::type_identity_t<T> s, const Tensor<T>& a) { return sub(T(s), a); }
template <Floating T> Tensor<T> operator*(const Tensor<T>& a, std::type_identity_t<T> s) { return mul(a, T(s)); }
template <Floating T> Tensor<T> operator*(std::type_identity_t<T> s, const Tensor<T>& a) { return mul(a, T(s)); }
template <Floating T> Tensor<T> operator/(const Tensor<T>& a, std::type_identity_t<T> s) { return div(a, T(s)); }
template <Floating T> Tensor<T> operator/(std::type_identity_t<T> s, const Tensor<T>& a) { return div(T(s), a); }

}  // namespace metagrad
