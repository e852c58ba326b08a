// SPDX-License-Identifier: MIT
// Element-wise CPU kernels. The math is passed in as a functor over Eigen array expressions, so
// exp/log/tanh/... use Eigen's vectorised implementations, and one kernel serves every op.
// Broadcasting walks the output row by row; each operand advances by 0 or 1 along the last dim.
#pragma once
#include <array>
#include <cstdint>

#include <Eigen/Core>

#include "metagrad/backend/cpu/parallel.hpp"
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
