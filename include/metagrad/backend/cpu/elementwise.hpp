// SPDX-License-Identifier: MIT
// Element-wise CPU kernels. The math is passed in as a functor over Eigen array expressions, so
// exp/log/tanh/... use Eigen's vectorised implementations, and one kernel serves every op.
// Broadcasting walks the output row by row; each operand advances by 0 or 1 along the last dim.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <Eigen/Core>

#include "metagrad/backend/cpu/parallel.hpp"
#include "metagrad/backend/types.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::cpu {

inline constexpr std::int64_t kElementwiseGrain = 1 << 15;

template <class T>
using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

/// out = f(x) with f taking and returning Eigen array expressions.
template <class R = void, Element T, class F>
auto map_unary(const Tensor<T>& x, F&& f) {
  using Out = std::conditional_t<std::is_void_v<R>, T, R>;
  auto out = Tensor<Out>::empty(x.shape());
  const T* px = x.data();
  Out* po = out.fresh_data();
  parallel_for(x.numel(), kElementwiseGrain, [&](std::int64_t b, std::int64_t e) {
    ArrayMap<Out>(po + b, e - b) = f(ConstArrayMap<T>(px + b, e - b)).template cast<Out>();
  });
  return out;
}

namespace detail {
/// Strides of `s` aligned to an output of rank `rank`, 0 along broadcast dims.
inline std::array<std::int64_t, kMaxRank> broadcast_strides(const Shape& s, const Shape& out) {
  std::array<std::int64_t, kMaxRank> st{};
  const auto natural = s.strides();
  const int shift = out.rank() - s.rank();
  for (int i = 0; i < s.rank(); ++i)
    st[static_cast<std::size_t>(i + shift)] = s[i] == 1 ? 0 : natural[static_cast<std::size_t>(i)];
  return st;
}

/// Calls row(row_index, offsets...) for every row (last-dim run) of `out`, where offsets are each
/// operand's element offset at the row start. Rows are split across threads.
template <std::size_t N, class Row>
void for_each_row(const Shape& out, const std::array<std::array<std::int64_t, kMaxRank>, N>& strides, Row&& row) {
  const int rank = out.rank();
  const std::int64_t inner = rank ? out[rank - 1] : 1;
  const std::int64_t rows = inner ? out.numel() / inner : 0;
  parallel_for(rows, std::max<std::int64_t>(1, kElementwiseGrain / std::max<std::int64_t>(inner, 1)),
               [&](std::int64_t begin, std::int64_t end) {
                 // Multi-index of row `begin` over the outer dims.
                 std::array<std::int64_t, kMaxRank> idx{};
                 std::int64_t rem = begin;
                 for (int d = rank - 2; d >= 0; --d) {
                   idx[static_cast<std::size_t>(d)] = rem % out[d];
                   rem /= out[d];
                 }
                 std::array<std::int64_t, N> off{};
                 for (std::size_t k = 0; k < N; ++k)
                   for (int d = 0; d < rank - 1; ++d) off[k] += idx[static_cast<std::size_t>(d)] * strides[k][static_cast<std::size_t>(d)];
                 for (std::int64_t r = begin; r < end; ++r) {
                   row(off);
                   for (int d = rank - 2; d >= 0; --d) {
                     const auto ud = static_cast<std::size_t>(d);
                     ++idx[ud];
                     for (std::size_t k = 0; k < N; ++k) off[k] += strides[k][ud];
                     if (idx[ud] < out[d]) break;
                     for (std::size_t k = 0; k < N; ++k) off[k] -= strides[k][ud] * out[d];
                     idx[ud] = 0;
                   }
                 }
               });
}
}  // namespace detail

/// out = f(a, b) with NumPy broadcasting; f takes two Eigen array expressions.
template <class R = void, Element T, class F>
auto map_binary(const Tensor<T>& a, const Tensor<T>& b, const Shape& out_shape, F&& f) {
  using Out = std::conditional_t<std::is_void_v<R>, T, R>;
  auto out = Tensor<Out>::empty(out_shape);
  const T *pa = a.data(), *pb = b.data();
  Out* po = out.fresh_data();
  const std::int64_t n = out.numel();
  if (a.shape() == out_shape && b.shape() == out_shape) {
    parallel_for(n, kElementwiseGrain, [&](std::int64_t s, std::int64_t e) {
      ArrayMap<Out>(po + s, e - s) = f(ConstArrayMap<T>(pa + s, e - s), ConstArrayMap<T>(pb + s, e - s)).template cast<Out>();
    });
    return out;
  }
  if (a.shape() == out_shape && b.numel() == 1) {
    const T bv = pb[0];
    parallel_for(n, kElementwiseGrain, [&](std::int64_t s, std::int64_t e) {
      ArrayMap<Out>(po + s, e - s) =
          f(ConstArrayMap<T>(pa + s, e - s), Eigen::Array<T, Eigen::Dynamic, 1>::Constant(e - s, bv)).template cast<Out>();
    });
    return out;
  }
  if (b.shape() == out_shape && a.numel() == 1) {
    const T av = pa[0];
    parallel_for(n, kElementwiseGrain, [&](std::int64_t s, std::int64_t e) {
      ArrayMap<Out>(po + s, e - s) =
          f(Eigen::Array<T, Eigen::Dynamic, 1>::Constant(e - s, av), ConstArrayMap<T>(pb + s, e - s)).template cast<Out>();
    });
    return out;
  }
  const std::array<std::array<std::int64_t, kMaxRank>, 3> strides{
      detail::broadcast_strides(a.shape(), out_shape), detail::broadcast_strides(b.shape(), out_shape),
      out_shape.strides()};
  const int rank = out_shape.rank();
  const std::int64_t inner = rank ? out_shape[rank - 1] : 1;
  const std::int64_t sa = rank ? strides[0][static_cast<std::size_t>(rank - 1)] : 0;
  const std::int64_t sb = rank ? strides[1][static_cast<std::size_t>(rank - 1)] : 0;
  using Col = Eigen::Array<T, Eigen::Dynamic, 1>;
  detail::for_each_row<3>(out_shape, strides, [&](const std::array<std::int64_t, 3>& off) {
    ArrayMap<Out> o(po + off[2], inner);
    if (sa && sb) o = f(ConstArrayMap<T>(pa + off[0], inner), ConstArrayMap<T>(pb + off[1], inner)).template cast<Out>();
    else if (sa) o = f(ConstArrayMap<T>(pa + off[0], inner), Col::Constant(inner, pb[off[1]])).template cast<Out>();
    else if (sb) o = f(Col::Constant(inner, pa[off[0]]), ConstArrayMap<T>(pb + off[1], inner)).template cast<Out>();
    else o = f(Col::Constant(inner, pa[off[0]]), Col::Constant(inner, pb[off[1]])).template cast<Out>();
  });
  return out;
}

/// out = f(a, b) for two tensors of one shape: map_binary without its broadcasting paths, for
/// kernels (such as fused backward ops) whose operands never broadcast.
template <Element T, class F>
Tensor<T> map_binary_same_shape(const Tensor<T>& a, const Tensor<T>& b, F&& f) {
  auto out = Tensor<T>::empty(a.shape());
  const T *pa = a.data(), *pb = b.data();
  T* po = out.fresh_data();
  parallel_for(out.numel(), kElementwiseGrain, [&](std::int64_t s, std::int64_t e) {
    ArrayMap<T>(po + s, e - s) = f(ConstArrayMap<T>(pa + s, e - s), ConstArrayMap<T>(pb + s, e - s));
  });
  return out;
}

/// out[i] = f(a[i], b[i], c[i]) with broadcasting, one scalar at a time (for rarer ops like where).
template <class R, class A, class B, class C, class F>
Tensor<R> map_ternary_scalar(const Tensor<A>& a, const Tensor<B>& b, const Tensor<C>& c, const Shape& out_shape, F&& f) {
  auto out = Tensor<R>::empty(out_shape);
  const A* pa = a.data();
  const B* pb = b.data();
  const C* pc = c.data();
  R* po = out.fresh_data();
  const std::array<std::array<std::int64_t, kMaxRank>, 4> strides{
      detail::broadcast_strides(a.shape(), out_shape), detail::broadcast_strides(b.shape(), out_shape),
      detail::broadcast_strides(c.shape(), out_shape), out_shape.strides()};
  const int rank = out_shape.rank();
  const std::int64_t inner = rank ? out_shape[rank - 1] : 1;
  const auto last = static_cast<std::size_t>(std::max(rank - 1, 0));
  const std::int64_t sa = rank ? strides[0][last] : 0, sb = rank ? strides[1][last] : 0, sc = rank ? strides[2][last] : 0;
  detail::for_each_row<4>(out_shape, strides, [&](const std::array<std::int64_t, 4>& off) {
    for (std::int64_t i = 0; i < inner; ++i) po[off[3] + i] = f(pa[off[0] + i * sa], pb[off[1] + i * sb], pc[off[2] + i * sc]);
  });
  return out;
}

}  // namespace metagrad::cpu

namespace metagrad::cpu {

/// A contiguous copy of `x` broadcast to `out_shape`.
template <Element T>
Tensor<T> broadcast_copy(const Tensor<T>& x, const Shape& out_shape) {
  auto out = Tensor<T>::empty(out_shape);
  const T* px = x.data();
  T* po = out.fresh_data();
  const std::array<std::array<std::int64_t, kMaxRank>, 2> strides{detail::broadcast_strides(x.shape(), out_shape),
                                                                  out_shape.strides()};
  const int rank = out_shape.rank();
  const std::int64_t inner = rank ? out_shape[rank - 1] : 1;
  const std::int64_t sx = rank ? strides[0][static_cast<std::size_t>(rank - 1)] : 0;
  detail::for_each_row<2>(out_shape, strides, [&](const std::array<std::int64_t, 2>& off) {
    if (sx) std::copy_n(px + off[0], inner, po + off[1]);
    else std::fill_n(po + off[1], inner, px[off[0]]);
  });
  return out;
}

}  // namespace metagrad::cpu

// ---- vectorised comparisons, selection and a broadcasting ternary map ----
// Eigen 3.4 evaluates comparisons (bool results), cast<T>() of them and select() one coefficient
// at a time, which turns an exp or log inside a select() into a scalar libm call. The functors
// below give them packet paths: a comparison yields its 0/1 mask directly in T (an all-ones lane
// masked with the bits of 1.0), and select blends two packets, so an activation with a kink stays
// one vectorised expression. Both branches of a packet select are evaluated; only the chosen one
// reaches the output, so an overflow in the unused branch is harmless.
namespace metagrad::cpu {

using backend::Compare;

namespace detail {
template <class T, Compare C>
struct compare_op {
  T operator()(const T& x, const T& y) const {
    bool r = false;
    if constexpr (C == Compare::eq) r = x == y;
    else if constexpr (C == Compare::ne) r = x != y;
    else if constexpr (C == Compare::lt) r = x < y;
    else if constexpr (C == Compare::le) r = x <= y;
    else if constexpr (C == Compare::gt) r = x > y;
    else r = x >= y;
    return r ? T(1) : T(0);
  }
  template <class P>
  P packetOp(const P& x, const P& y) const {
    namespace ei = Eigen::internal;
    const P one = ei::pset1<P>(T(1));
    if constexpr (C == Compare::eq) return ei::pand(ei::pcmp_eq(x, y), one);
    else if constexpr (C == Compare::ne) return ei::pandnot(one, ei::pcmp_eq(x, y));  // NaN != NaN is true
    else if constexpr (C == Compare::lt) return ei::pand(ei::pcmp_lt(x, y), one);
    else if constexpr (C == Compare::le) return ei::pand(ei::pcmp_le(x, y), one);
    else if constexpr (C == Compare::gt) return ei::pand(ei::pcmp_lt(y, x), one);
    else return ei::pand(ei::pcmp_le(y, x), one);
  }
};

/// m != 0 ? a : b (so NaN in m counts as true, as bool(NaN) does in C++ and PyTorch).
template <class T>
struct select_op {
  T operator()(const T& m, const T& a, const T& b) const { return m != T(0) ? a : b; }
  template <class P>
  P packetOp(const P& m, const P& a, const P& b) const {
    namespace ei = Eigen::internal;
    return ei::pselect(ei::pcmp_eq(m, ei::pzero(m)), b, a);
  }
};
}  // namespace detail
}  // namespace metagrad::cpu

template <class T, metagrad::cpu::Compare C>
struct Eigen::internal::functor_traits<metagrad::cpu::detail::compare_op<T, C>> {
  enum { Cost = 2, PacketAccess = true };
};
template <class T>
struct Eigen::internal::functor_traits<metagrad::cpu::detail::select_op<T>> {
  enum { Cost = 2, PacketAccess = true };
};

namespace metagrad::cpu {

/// The 0/1 mask of `x C y` in x's scalar type, vectorised.
template <Compare C, class X, class Y>
auto compare(const Eigen::ArrayBase<X>& x, const Eigen::ArrayBase<Y>& y) {
  return x.binaryExpr(y.derived(), detail::compare_op<typename X::Scalar, C>());
}
template <Compare C, class X>
auto compare(const Eigen::ArrayBase<X>& x, typename X::Scalar s) {
  return compare<C>(x, X::PlainObject::Constant(x.size(), s));
}

/// m != 0 ? a : b coefficient-wise, vectorised; a or b may be a scalar.
template <class M, class A, class B>
auto select(const Eigen::ArrayBase<M>& m, const Eigen::ArrayBase<A>& a, const Eigen::ArrayBase<B>& b) {
  using T = typename M::Scalar;
  return Eigen::CwiseTernaryOp<detail::select_op<T>, const M, const A, const B>(m.derived(), a.derived(), b.derived());
}
template <class M, class A>
auto select(const Eigen::ArrayBase<M>& m, const Eigen::ArrayBase<A>& a, typename M::Scalar b) {
  return select(m, a, M::PlainObject::Constant(m.size(), b));
}
template <class M, class B>
auto select(const Eigen::ArrayBase<M>& m, typename M::Scalar a, const Eigen::ArrayBase<B>& b) {
  return select(m, M::PlainObject::Constant(m.size(), a), b);
}
template <class M>
auto select(const Eigen::ArrayBase<M>& m, typename M::Scalar a, typename M::Scalar b) {
  return select(m, M::PlainObject::Constant(m.size(), a), M::PlainObject::Constant(m.size(), b));
}

/// Coefficient-wise maximum / minimum that return NaN when either side is NaN (Eigen's default
/// max() returns whichever operand the instruction picks), vectorised.
template <class X, class Y>
auto nan_max(const Eigen::ArrayBase<X>& x, const Eigen::ArrayBase<Y>& y) {
  using T = typename X::Scalar;
  return x.binaryExpr(y.derived(), Eigen::internal::scalar_max_op<T, T, Eigen::PropagateNaN>());
}
template <class X, class Y>
auto nan_min(const Eigen::ArrayBase<X>& x, const Eigen::ArrayBase<Y>& y) {
  using T = typename X::Scalar;
  return x.binaryExpr(y.derived(), Eigen::internal::scalar_min_op<T, T, Eigen::PropagateNaN>());
}
template <class X>
auto nan_max(const Eigen::ArrayBase<X>& x, typename X::Scalar s) {
  return nan_max(x, X::PlainObject::Constant(x.size(), s));
}
template <class X>
auto nan_min(const Eigen::ArrayBase<X>& x, typename X::Scalar s) {
  return nan_min(x, X::PlainObject::Constant(x.size(), s));
}

namespace detail {
/// Calls fn with a run of n values starting at p: a map when the operand advances along the run,
/// else a constant of its single value.
template <class T, class Fn>
void with_run(const T* p, bool advances, std::int64_t n, Fn&& fn) {
  if (advances) fn(ConstArrayMap<T>(p, n));
  else fn(Eigen::Array<T, Eigen::Dynamic, 1>::Constant(n, *p));
}
}  // namespace detail

/// out = f(a, b, c) with NumPy broadcasting of all three; f takes three Eigen array expressions,
/// as in map_binary. When every operand is full-sized or a single value the output is one flat
/// run (split across threads); otherwise it is walked row by row.
template <Element T, class F>
Tensor<T> map_ternary(const Tensor<T>& a, const Tensor<T>& b, const Tensor<T>& c, const Shape& out_shape, F&& f) {
  auto out = Tensor<T>::empty(out_shape);
  const T *pa = a.data(), *pb = b.data(), *pc = c.data();
  T* po = out.fresh_data();
  // One run of n outputs from offsets (oa, ob, oc) -> oo; operand k advances along it iff sk.
  auto run = [&](std::int64_t oa, std::int64_t ob, std::int64_t oc, std::int64_t oo, bool sa, bool sb, bool sc,
                 std::int64_t n) {
    detail::with_run(pa + oa, sa, n, [&](const auto& x) {
      detail::with_run(pb + ob, sb, n, [&](const auto& y) {
        detail::with_run(pc + oc, sc, n, [&](const auto& z) { ArrayMap<T>(po + oo, n) = f(x, y, z); });
      });
    });
  };
  auto is_full = [&](const Tensor<T>& t) { return t.shape() == out_shape; };
  if ((is_full(a) || a.numel() == 1) && (is_full(b) || b.numel() == 1) && (is_full(c) || c.numel() == 1)) {
    parallel_for(out.numel(), kElementwiseGrain, [&](std::int64_t s, std::int64_t e) {
      run(is_full(a) ? s : 0, is_full(b) ? s : 0, is_full(c) ? s : 0, s, is_full(a), is_full(b), is_full(c), e - s);
    });
    return out;
  }
  // Some operand is broadcast along an inner dim, so the output has rank >= 1.
  const std::array<std::array<std::int64_t, kMaxRank>, 4> strides{
      detail::broadcast_strides(a.shape(), out_shape), detail::broadcast_strides(b.shape(), out_shape),
      detail::broadcast_strides(c.shape(), out_shape), out_shape.strides()};
  const auto last = static_cast<std::size_t>(out_shape.rank() - 1);
  const std::int64_t inner = out_shape[out_shape.rank() - 1];
  detail::for_each_row<4>(out_shape, strides, [&](const std::array<std::int64_t, 4>& off) {
    run(off[0], off[1], off[2], off[3], strides[0][last] != 0, strides[1][last] != 0, strides[2][last] != 0, inner);
  });
  return out;
}

}  // namespace metagrad::cpu

// ---- exp, exactly 0 where it underflows ----
namespace metagrad::cpu::detail {
/// exp(x), exactly 0 in every lane wherever the true exp rounds to 0 (-inf included). Eigen 3.4's
/// vectorised exp clamps its argument (to about -709, or -88 in float without AVX-512) and so
/// gives ~1e-308 (~1e-38) there, where the scalar exp of a run's tail gives 0; a masked logit
/// (-inf, or a finite bias such as -1e9) must weigh exactly nothing. A packet compare and blend,
/// because Eigen 3.4's select() would make every exp a scalar call.
template <class T>
struct exp0_op {
  /// log(denorm_min / 2): at or below it exp(x) rounds to 0 (to even, at the bound itself).
  static constexpr T underflow = std::is_same_v<T, float> ? T(-103.972077083991796) : T(-745.1332191019412);
  T operator()(const T& x) const { return Eigen::numext::exp(x); }
  template <class P>
  P packetOp(const P& x) const {
    namespace ei = Eigen::internal;
    return ei::pselect(ei::pcmp_le(x, ei::pset1<P>(underflow)), ei::pzero(x), ei::pexp(x));
  }
};
}  // namespace metagrad::cpu::detail

template <class T>
struct Eigen::internal::functor_traits<metagrad::cpu::detail::exp0_op<T>> {
  enum { Cost = functor_traits<scalar_exp_op<T>>::Cost + 2, PacketAccess = packet_traits<T>::HasExp };
};

namespace metagrad::cpu {
/// exp coefficient-wise, vectorised, and exactly 0 where it underflows (see detail::exp0_op).
template <class X>
auto exp0(const Eigen::ArrayBase<X>& x) { return x.unaryExpr(detail::exp0_op<typename X::Scalar>()); }
}  // namespace metagrad::cpu

// ---- the normal distribution and gelu ----
// gelu(x) = x Φ(x). The textbook form 0.5 (1 + erf(x/√2)) cancels for x < 0 (at x = -6 no digit
// of a float result survives), and Eigen 3.4's erf/erfc/tanh for double are scalar libm calls.
// Here Φ(-u) = φ(u) M(u) for u = |x|, with M the Mills ratio fitted as t P(t), t = 1/(1 + a u),
// a Chebyshev fit made with mpmath at 50 digits (relative error 3e-10 for float over u <= 14,
// 4e-17 for double over u <= 40), and φ(u) = exp(-x²/2) / √(2π) with x² split exactly into
// hi + lo by an FMA, so no digit is lost to rounding x². Both tails then stay accurate to a few
// ulp, vectorised in float and double. Below the smallest normal number φ is flushed to 0.
// The tanh approximation uses 0.5 (1 + tanh(v)) = 1 / (1 + exp(-2v)), which does not cancel.
namespace metagrad::cpu::detail {

template <class T>
struct mills_fit;
template <>
struct mills_fit<float> {
  static constexpr float a = 0.25f, max_u = 14.0f, underflow_u = 13.2f;
  static constexpr std::array<float, 12> c = {
      -0.0176031834718f, 0.0846331204567f, -0.110406243915f, -0.0685720441302f, 0.230782747828f, -0.16485702728f,
      0.2442108557f,     0.105992511418f,  0.216786394315f,  0.232145928262f,   0.250209742547f, 0.249991335459f};
};
template <>
struct mills_fit<double> {
  static constexpr double a = 0.2, max_u = 40.0, underflow_u = 37.6;
  static constexpr std::array<double, 22> c = {
      -0.0023194871987712158068, 0.028335944725493603315, -0.15879398396139349996, 0.53945555588056659546,
      -1.2397776596063026649,    2.0466238278052998831,   -2.5337578647153636837,  2.4398575264420052672,
      -1.8686868816935851125,    1.1426995811918246667,   -0.57618513949038918821, 0.23671181334944759859,
      -0.059903664511053094373,  0.058652824255372853507, 0.059750300950134313655, 0.094986783503684822789,
      0.12469453656872689598,    0.15297091181883276753,  0.17599916973601385619,  0.19200004365699156258,
      0.1999999985867983736,     0.2000000000211656482};
};

// The same formulas serve packets and the scalars of a run's tail; these wrap the difference.
template <class T, class P>
P splat(T v) {
  if constexpr (std::is_same_v<P, T>) return v;
  else return Eigen::internal::pset1<P>(v);
}
template <class P>
P fmadd(const P& a, const P& b, const P& c) {
  if constexpr (std::is_floating_point_v<P>) return std::fma(a, b, c);
  else return Eigen::internal::pmadd(a, b, c);
}
template <class P>
P if_negative(const P& x, const P& a, const P& b) {
  if constexpr (std::is_floating_point_v<P>) return x < P(0) ? a : b;
  else return Eigen::internal::pselect(Eigen::internal::pcmp_lt(x, Eigen::internal::pzero(x)), a, b);
}
template <class P>
P if_greater(const P& x, const P& limit, const P& a, const P& b) {
  if constexpr (std::is_floating_point_v<P>) return x > limit ? a : b;
  else return Eigen::internal::pselect(Eigen::internal::pcmp_lt(limit, x), a, b);
}
/// The rounding error of hi = x * x, exactly: x² = hi + lo. Eigen's pmadd is a fused
/// multiply-add only where the target has FMA; elsewhere (e.g. a portable -O1 build) it would
/// round the product and return 0, so Dekker's split gives the exact product instead.
template <class T, class P>
P square_lo(const P& x, const P& hi) {
  namespace ei = Eigen::internal;
#if defined(__FMA__)
  return fmadd(x, x, ei::pnegate(hi));
#else
  if constexpr (std::is_floating_point_v<P>) {
    return std::fma(x, x, -hi);
  } else {
    // x = xh + xl with halves of at most 12 (float) or 26 (double) significant bits: their
    // products are exact. Overflow for huge |x| only reaches lanes whose φ is flushed to 0.
    const P c = ei::pmul(splat<T, P>(std::is_same_v<T, float> ? T(4097) : T(134217729)), x);
    const P xh = ei::psub(c, ei::psub(c, x)), xl = ei::psub(x, xh);
    return ei::padd(ei::padd(ei::psub(ei::pmul(xh, xh), hi), ei::pmul(ei::padd(xh, xh), xl)), ei::pmul(xl, xl));
  }
#endif
}

/// exp, exactly 0 at -inf in SIMD lanes as in the scalar tail (x = ±inf reaches it with -inf).
template <class P>
P exp_of(const P& x) {
  if constexpr (std::is_floating_point_v<P>) return std::exp(x);
  else return exp0_op<typename Eigen::internal::unpacket_traits<P>::type>().packetOp(x);
}

/// Φ(x) and φ(x), each to a few ulp in relative terms.
template <class T, class P>
void normal_cdf_pdf(const P& x, P& cdf, P& pdf) {
  namespace ei = Eigen::internal;
  using Fit = mills_fit<T>;
  const P u = ei::pabs(x), one = splat<T, P>(T(1));
  const P t = ei::pdiv(one, fmadd(splat<T, P>(Fit::a), ei::pmin(u, splat<T, P>(Fit::max_u)), one));
  P poly = splat<T, P>(Fit::c[0]);
  for (std::size_t i = 1; i < Fit::c.size(); ++i) poly = fmadd(poly, t, splat<T, P>(Fit::c[i]));
  const P hi = ei::pmul(x, x), lo = square_lo<T>(x, hi);  // x² = hi + lo exactly
  const P half = splat<T, P>(T(0.5));
  P phi = ei::pmul(exp_of(ei::pnegate(ei::pmul(half, hi))), fmadd(ei::pnegate(half), lo, one));
  phi = ei::pmul(phi, splat<T, P>(T(0.3989422804014326779399460599343819)));
  pdf = if_greater(u, splat<T, P>(Fit::underflow_u), splat<T, P>(T(0)), phi);
  const P tail = ei::pmul(pdf, ei::pmul(t, poly));  // Φ(-u)
  cdf = if_negative(x, tail, ei::psub(one, tail));
}

template <class T>
struct gelu_op {
  template <class P>
  P run(const P& x) const {
    P cdf, pdf;
    normal_cdf_pdf<T>(x, cdf, pdf);
    return Eigen::internal::pmul(x, cdf);
  }
  T operator()(const T& x) const { return run(x); }
  template <class P>
  P packetOp(const P& x) const { return run(x); }
};

/// gelu'(x) = Φ(x) + x φ(x).
template <class T>
struct gelu_grad_op {
  template <class P>
  P run(const P& x) const {
    P cdf, pdf;
    normal_cdf_pdf<T>(x, cdf, pdf);
    return fmadd(x, pdf, cdf);
  }
  T operator()(const T& x) const { return run(x); }
  template <class P>
  P packetOp(const P& x) const { return run(x); }
};

inline constexpr double kGeluTanhBeta = 0.7978845608028653558798921198687637;  // sqrt(2/π)
inline constexpr double kGeluTanhKappa = 0.044715;

/// 0.5 x (1 + tanh(v)) with v = sqrt(2/π) (x + 0.044715 x³), as x s with s = 1 / (1 + exp(-2v)).
template <class T>
struct gelu_tanh_op {
  template <class P>
  P run(const P& x) const {
    namespace ei = Eigen::internal;
    const P x2 = ei::pmul(x, x);
    const P v = ei::pmul(splat<T, P>(T(kGeluTanhBeta)), fmadd(ei::pmul(splat<T, P>(T(kGeluTanhKappa)), x2), x, x));
    const P e = exp_of(ei::pmul(splat<T, P>(T(-2)), v));
    return ei::pdiv(x, ei::padd(splat<T, P>(T(1)), e));
  }
  T operator()(const T& x) const { return run(x); }
  template <class P>
  P packetOp(const P& x) const { return run(x); }
};

/// d/dx of gelu_tanh_op: 0.5 (1 + t) + 0.5 x (1 - t²) w with w = dv/dx, that is
/// s (1 + 2 x w (1 - s)); 1 - s is taken as e s where v >= 0, so it does not cancel.
template <class T>
struct gelu_tanh_grad_op {
  template <class P>
  P run(const P& x) const {
    namespace ei = Eigen::internal;
    const P one = splat<T, P>(T(1)), beta = splat<T, P>(T(kGeluTanhBeta)), kappa = splat<T, P>(T(kGeluTanhKappa));
    const P x2 = ei::pmul(x, x);
    const P v = ei::pmul(beta, fmadd(ei::pmul(kappa, x2), x, x));
    const P e = exp_of(ei::pmul(splat<T, P>(T(-2)), v));
    const P s = ei::pdiv(one, ei::padd(one, e));
    const P one_minus_s = if_negative(v, ei::psub(one, s), ei::pmul(e, s));
    const P w = ei::pmul(beta, fmadd(ei::pmul(splat<T, P>(T(3)), kappa), x2, one));
    const P two_x_w = ei::pmul(splat<T, P>(T(2)), ei::pmul(x, w));
    return ei::pmul(s, fmadd(two_x_w, one_minus_s, one));
  }
  T operator()(const T& x) const { return run(x); }
  template <class P>
  P packetOp(const P& x) const { return run(x); }
};

}  // namespace metagrad::cpu::detail

template <class T>
struct Eigen::internal::functor_traits<metagrad::cpu::detail::gelu_op<T>> {
  enum { Cost = 40, PacketAccess = true };
};
template <class T>
struct Eigen::internal::functor_traits<metagrad::cpu::detail::gelu_grad_op<T>> {
  enum { Cost = 40, PacketAccess = true };
};
template <class T>
struct Eigen::internal::functor_traits<metagrad::cpu::detail::gelu_tanh_op<T>> {
  enum { Cost = 20, PacketAccess = true };
};
template <class T>
struct Eigen::internal::functor_traits<metagrad::cpu::detail::gelu_tanh_grad_op<T>> {
  enum { Cost = 25, PacketAccess = true };
};

namespace metagrad::cpu {
/// x Φ(x), vectorised and accurate in both tails.
template <class X>
auto gelu(const Eigen::ArrayBase<X>& x) { return x.unaryExpr(detail::gelu_op<typename X::Scalar>()); }
/// Φ(x) + x φ(x): the derivative of gelu.
template <class X>
auto gelu_grad(const Eigen::ArrayBase<X>& x) { return x.unaryExpr(detail::gelu_grad_op<typename X::Scalar>()); }
/// 0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³))), PyTorch's approximate="tanh".
template <class X>
auto gelu_tanh(const Eigen::ArrayBase<X>& x) { return x.unaryExpr(detail::gelu_tanh_op<typename X::Scalar>()); }
/// The derivative of gelu_tanh.
template <class X>
auto gelu_tanh_grad(const Eigen::ArrayBase<X>& x) { return x.unaryExpr(detail::gelu_tanh_grad_op<typename X::Scalar>()); }
}  // namespace metagrad::cpu
