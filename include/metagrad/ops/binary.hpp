// SPDX-License-Identifier: MIT
// Binary element-wise ops with NumPy broadcasting: pow, maximum, minimum and where, with scalar
// forms, and contextual decomposition's bias_share. (add, sub, mul, div live in arithmetic.hpp.)
// Gradients follow PyTorch's conventions at the awkward points: maximum/minimum split a tie 0.5/0.5, pow's gradients are 0 rather than
// NaN where the exponent is 0 or the base is 0.
#pragma once
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>

#include "metagrad/backend/binary.hpp"
#include "metagrad/backend/compare.hpp"
#include "metagrad/backend/unary.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad {

namespace detail {
/// NumPy broadcasting of three shapes; the error names all three.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const Shape& c, const char* op) {
  const int r = std::max({a.rank(), b.rank(), c.rank()});
  Shape out;
  for (int i = 0; i < r; ++i) {
    std::int64_t d = 1;
    bool ok = true;
    for (const Shape* s : {&a, &b, &c}) {
      const int j = i - (r - s->rank());
      const std::int64_t e = j >= 0 ? (*s)[j] : 1;
      if (e != 1 && d != 1 && e != d) ok = false;
      if (e != 1) d = e;
    }
    check(ok, op, "shapes ", a, ", ", b, " and ", c, " cannot be broadcast together (dim ", i, ")");
    out.push_back(d);
  }
  return out;
}

/// The share of maximum's (Loses = lt) or minimum's (Loses = gt) gradient that goes to x against
/// y: 1 where x wins, 0.5 at a tie, 0 where x loses; 1 to both sides where one is NaN. These are
/// PyTorch's weights.
template <backend::Compare Loses, Floating T>
Tensor<T> extremum_share(const Tensor<T>& x, const Tensor<T>& y, const Shape& out) {
  return backend::extremum_share<Loses>(x, y, out);
}

template <backend::Compare Loses, Floating T>
void extremum_backward(const Tensor<T>& g, BackwardContext<T>& c) {
  const auto &a = c.input(0), &b = c.input(1);
  if (c.wants(0)) c.set(0, sum_to(mul(g, extremum_share<Loses>(a, b, g.shape())), a.shape()));
  if (c.wants(1)) c.set(1, sum_to(mul(g, extremum_share<Loses>(b, a, g.shape())), b.shape()));
}

/// The tangent of maximum/minimum: each side's tangent times its share (a tie is the mean).
template <backend::Compare Loses, Floating T>
Tensor<T> extremum_tangent(const TangentContext<T>& c) {
  const auto &a = c.input(0), &b = c.input(1);
  const Shape& out = c.output_shape();
  const Tensor<T> da = c.has_tangent(0) ? mul(c.tangent(0), extremum_share<Loses>(a, b, out)) : Tensor<T>();
  const Tensor<T> db = c.has_tangent(1) ? mul(c.tangent(1), extremum_share<Loses>(b, a, out)) : Tensor<T>();
  return add_terms(da, db, out);
}
}  // namespace detail

// ---- where ----

/// cond != 0 ? a : b element-wise, with cond, a and b broadcast together. cond is a constant
/// mask (from gt(), eq(), ...): it is not differentiated, even if it requires grad.
template <Floating T>
Tensor<T> where(const Tensor<T>& cond, const Tensor<T>& a, const Tensor<T>& b) {
  const Shape out = detail::broadcast_shapes(cond.shape(), a.shape(), b.shape(), "where");
  auto r = backend::where(cond, a, b, out);
  const Tensor<T> mask = cond.detach();
  return record("where", std::move(r), {a, b}, [mask](const Tensor<T>& g, BackwardContext<T>& c) {
    if (c.wants(0)) c.set(0, sum_to(where(mask, g, scalar_tensor<T>(0)), c.input(0).shape()));
    if (c.wants(1)) c.set(1, sum_to(where(mask, scalar_tensor<T>(0), g), c.input(1).shape()));
  }, [mask](const TangentContext<T>& c) {
    const Tensor<T> da = c.has_tangent(0) ? c.tangent(0) : scalar_tensor<T>(0);
    const Tensor<T> db = c.has_tangent(1) ? c.tangent(1) : scalar_tensor<T>(0);
    return broadcast_to(where(mask, da, db), c.output_shape());
  });
}
template <Floating T>
Tensor<T> where(const Tensor<T>& cond, const Tensor<T>& a, std::type_identity_t<T> b) {
  return where(cond, a, scalar_tensor<T>(b));
}
template <Floating T>
Tensor<T> where(const Tensor<T>& cond, std::type_identity_t<T> a, const Tensor<T>& b) {
  return where(cond, scalar_tensor<T>(a), b);
}

// ---- maximum, minimum ----

/// The larger of a and b (NaN if either is NaN). The gradient goes to the larger side; a tie
/// splits it 0.5/0.5, as in PyTorch.
template <Floating T>
Tensor<T> maximum(const Tensor<T>& a, const Tensor<T>& b) {
  const Shape out = broadcast_shapes(a.shape(), b.shape(), "maximum");
  return record("maximum", backend::maximum(a, b, out),
                {a, b}, [](const Tensor<T>& g, BackwardContext<T>& c) { detail::extremum_backward<backend::Compare::lt>(g, c); },
                [](const TangentContext<T>& c) { return detail::extremum_tangent<backend::Compare::lt>(c); });
}

/// The smaller of a and b (NaN if either is NaN). The gradient goes to the smaller side; a tie
/// splits it 0.5/0.5, as in PyTorch.
template <Floating T>
Tensor<T> minimum(const Tensor<T>& a, const Tensor<T>& b) {
  const Shape out = broadcast_shapes(a.shape(), b.shape(), "minimum");
  return record("minimum", backend::minimum(a, b, out),
                {a, b}, [](const Tensor<T>& g, BackwardContext<T>& c) { detail::extremum_backward<backend::Compare::gt>(g, c); },
                [](const TangentContext<T>& c) { return detail::extremum_tangent<backend::Compare::gt>(c); });
}

/// maximum(x, s) for a constant s: a tie with s also gets half the gradient (unlike clamp,
/// whose bounds pass it whole).
template <Floating T>
Tensor<T> maximum(const Tensor<T>& x, std::type_identity_t<T> s) { return maximum(x, scalar_tensor<T>(s)); }
template <Floating T>
Tensor<T> maximum(std::type_identity_t<T> s, const Tensor<T>& x) { return maximum(scalar_tensor<T>(s), x); }
template <Floating T>
Tensor<T> minimum(const Tensor<T>& x, std::type_identity_t<T> s) { return minimum(x, scalar_tensor<T>(s)); }
template <Floating T>
Tensor<T> minimum(std::type_identity_t<T> s, const Tensor<T>& x) { return minimum(scalar_tensor<T>(s), x); }

// ---- pow ----

/// a ** b element-wise. The gradient with respect to b is a^b log(a), real only for a > 0 (NaN
/// where a < 0); where a == 0 and b >= 0 it is 0, and the gradient with respect to a is 0 where
/// b == 0, as in PyTorch.
template <Floating T>
Tensor<T> pow(const Tensor<T>& a, const Tensor<T>& b) {
  const Shape out = broadcast_shapes(a.shape(), b.shape(), "pow");
  return record("pow", backend::pow(a, b, out), {a, b},
                [](const Tensor<T>& g, BackwardContext<T>& c) {
                  const auto &a = c.input(0), &b = c.input(1);
                  if (c.wants(0)) {
                    const auto ga = mul(g, mul(b, pow(a, sub(b, T(1)))));
                    c.set(0, sum_to(where(eq(b, T(0)), T(0), ga), a.shape()));
                  }
                  if (c.wants(1)) {
                    const auto zero_base = backend::pow_zero_base(a, b, g.shape());
                    const auto gb = mul(mul(g, c.output()), log(a));
                    c.set(1, sum_to(where(zero_base, T(0), gb), b.shape()));
                  }
                },
                [](const TangentContext<T>& c) {
                  const auto &a = c.input(0), &b = c.input(1);
                  const Shape& out = c.output_shape();
                  Tensor<T> da, db;
                  if (c.has_tangent(0)) da = where(eq(b, T(0)), T(0), mul(c.tangent(0), mul(b, pow(a, sub(b, T(1))))));
                  if (c.has_tangent(1))
                    db = where(backend::pow_zero_base(a, b, out), T(0), mul(mul(c.tangent(1), c.output()), log(a)));
                  return detail::add_terms(da, db, out);
                });
}

/// s ** x for a constant base s. The gradient s^x log(s) is real for s > 0; for s == 0 it is 0
/// where x >= 0, as in PyTorch.
template <Floating T>
Tensor<T> pow(std::type_identity_t<T> s, const Tensor<T>& x) {
  const T base = s;
  return record("pow_scalar_base", backend::pow_scalar_base(base, x), {x},
                [base](const Tensor<T>& g, BackwardContext<T>& c) {
                  const auto gx = mul(mul(g, c.output()), T(std::log(base)));
                  c.set(0, base == T(0) ? where(ge(c.input(0), T(0)), T(0), gx) : gx);
                },
                [base](const TangentContext<T>& c) {
                  const auto dx = mul(mul(c.tangent(0), c.output()), T(std::log(base)));
                  return base == T(0) ? where(ge(c.input(0), T(0)), T(0), dx) : dx;
                });
}

// ---- bias_share ----

namespace detail {
/// bias_share's ε: it keeps the share defined where x and y are both 0 (b then splits evenly).
template <Floating T>
inline constexpr T bias_share_eps = T(1e-20);

/// The partial derivatives in x and in y of q = sign(x)(|y| + ε)/D², D = |x| + |y| + 2ε, the
/// factor bias_share_backward multiplies h by: ∂q/∂x = −2 sign(x)²(|y| + ε)/D³ and
/// ∂q/∂y = sign(x) sign(y)(|x| − |y|)/D³. Composed of ops, since only the second and higher
/// orders need them.
template <Floating T>
std::pair<Tensor<T>, Tensor<T>> bias_share_backward_partials(const Tensor<T>& x, const Tensor<T>& y) {
  constexpr T eps = bias_share_eps<T>;
  const auto ax = abs(x), ay = abs(y);
  const auto d = add(add(ax, ay), T(2) * eps);
  const auto d3 = mul(square(d), d);
  const auto sx = sign(x);
  return {div(mul(square(sx), mul(add(ay, eps), T(-2))), d3), div(mul(mul(sx, sign(y)), sub(ax, ay)), d3)};
}
}  // namespace detail

/// h·sign(x)(|y| + ε)/(|x| + |y| + 2ε)²: the gradient of bias_share(x, y, b) in x is
/// bias_share_backward(g·b, x, y), and in y it is bias_share_backward(−g·b, y, x). bias_share's
/// fused first-order backward kernel, an op of its own so that it differentiates again. h, x and y
/// have one shape.
template <Floating T>
Tensor<T> bias_share_backward(const Tensor<T>& h, const Tensor<T>& x, const Tensor<T>& y) {
  check(h.shape() == x.shape() && x.shape() == y.shape(), "bias_share_backward", "h ", h.shape(), ", x ", x.shape(),
        " and y ", y.shape(), " must have one shape");
  return record("bias_share_backward", backend::bias_share_backward(h, x, y, detail::bias_share_eps<T>), {h, x, y},
                [](const Tensor<T>& g, BackwardContext<T>& c) {
                  const auto &h = c.input(0), &x = c.input(1), &y = c.input(2);
                  // Linear in h: its gradient is the op itself.
                  if (c.wants(0)) c.set(0, bias_share_backward(g, x, y));
                  if (c.wants(1) || c.wants(2)) {
                    const auto [qx, qy] = detail::bias_share_backward_partials(x, y);
                    const auto gh = mul(g, h);
                    if (c.wants(1)) c.set(1, mul(gh, qx));
                    if (c.wants(2)) c.set(2, mul(gh, qy));
                  }
                },
                [](const TangentContext<T>& c) {
                  const auto &h = c.input(0), &x = c.input(1), &y = c.input(2);
                  const Shape& out = c.output_shape();
                  Tensor<T> dh, dxy;
                  if (c.has_tangent(0)) dh = bias_share_backward(c.tangent(0), x, y);
                  if (c.has_tangent(1) || c.has_tangent(2)) {
                    const auto [qx, qy] = detail::bias_share_backward_partials(x, y);
                    const Tensor<T> tx = c.has_tangent(1) ? mul(c.tangent(1), qx) : Tensor<T>();
                    const Tensor<T> ty = c.has_tangent(2) ? mul(c.tangent(2), qy) : Tensor<T>();
                    dxy = mul(h, detail::add_terms(tx, ty, out));
                  }
                  return detail::add_terms(dh, dxy, out);
                });
}

/// b's share in the ratio |x| : |y|, element-wise: b·(|x| + ε)/(|x| + |y| + 2ε), ε = 1e-20.
/// Contextual decomposition splits an affine layer's bias this way between the relevant part x and
/// the irrelevant part y; bias_share(x, y, b) + bias_share(y, x, b) = b up to rounding. One pass
/// where the composed form takes ten, and its result bit for bit. x and y have one shape; b
/// broadcasts to it.
template <Floating T>
Tensor<T> bias_share(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& b) {
  check(x.shape() == y.shape(), "bias_share", "x ", x.shape(), " and y ", y.shape(), " must have one shape");
  check(broadcast_shapes(x.shape(), b.shape(), "bias_share") == x.shape(), "bias_share", "b of shape ", b.shape(),
        " does not broadcast to the shape of x ", x.shape());
  return record("bias_share", backend::bias_share(x, y, b, detail::bias_share_eps<T>), {x, y, b},
                [](const Tensor<T>& g, BackwardContext<T>& c) {
                  const auto &x = c.input(0), &y = c.input(1), &b = c.input(2);
                  // Linear in b: g's share is its gradient.
                  if (c.wants(2)) c.set(2, sum_to(bias_share(x, y, g), b.shape()));
                  if (c.wants(0) || c.wants(1)) {
                    const auto h = mul(g, b);
                    if (c.wants(0)) c.set(0, bias_share_backward(h, x, y));
                    if (c.wants(1)) c.set(1, bias_share_backward(neg(h), y, x));
                  }
                },
                [](const TangentContext<T>& c) {
                  const auto &x = c.input(0), &y = c.input(1), &b = c.input(2);
                  const Shape& out = c.output_shape();
                  Tensor<T> db, dx, dy;
                  if (c.has_tangent(2)) db = bias_share(x, y, c.tangent(2));
                  if (c.has_tangent(0)) dx = bias_share_backward(mul(c.tangent(0), b), x, y);
                  if (c.has_tangent(1)) dy = bias_share_backward(neg(mul(c.tangent(1), b)), y, x);
                  return detail::add_terms(detail::add_terms(db, dx, out), dy, out);
                });
}

}  // namespace metagrad
