// SPDX-License-Identifier: MIT
// Reductions over dims with keepdim: sum, mean, var, stddev, amax/amin, logsumexp, norm (L1, L2);
// max/min along one dim with their indices; argmax/argmin. Several dims are reduced one run of
// adjacent dims at a time, each run in a single kernel pass.
// Gradients of the extremes are constant masks: max/min along a dim send the gradient to the
// index they return (the first of ties, as PyTorch does); amax/amin split it evenly among ties.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "metagrad/backend/binary.hpp"
#include "metagrad/backend/compare.hpp"
#include "metagrad/backend/reduce.hpp"
#include "metagrad/backend/softmax.hpp"
#include "metagrad/backend/unary.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad {

namespace detail {
/// Sorted, de-duplicated, normalized dims; empty `dims` means all of them. A rank-0 tensor has
/// nothing to reduce: dim 0 (or -1) is accepted and the result is empty.
inline std::vector<int> reduction_dims(std::span<const std::int64_t> dims, int rank, const char* op) {
  std::vector<int> out;
  if (dims.empty()) {
    for (int i = 0; i < rank; ++i) out.push_back(i);
    return out;
  }
  for (auto d : dims) out.push_back(normalize_dim(d, rank, op));
  std::sort(out.begin(), out.end());
  check(std::adjacent_find(out.begin(), out.end()) == out.end(), op, "a dim is repeated in the reduction dims");
  if (rank == 0) out.clear();
  return out;
}

/// The shape x would have after reducing `dims` with keepdim=true.
inline Shape keepdim_shape(const Shape& s, const std::vector<int>& dims) {
  Shape out = s;
  for (int d : dims) out[d] = 1;
  return out;
}

inline Shape drop_dims(const Shape& s, const std::vector<int>& dims) {
  Shape out;
  for (int i = 0; i < s.rank(); ++i)
    if (std::find(dims.begin(), dims.end(), i) == dims.end()) out.push_back(s[i]);
  return out;
}

/// Number of elements each output of a reduction over `dims` combines.
inline std::int64_t reduced_count(const Shape& s, const std::vector<int>& dims) {
  std::int64_t n = 1;
  for (int d : dims) n *= s[d];
  return n;
}

/// Reduces x (detached) over `dims` with single-dim kernels `kernel(t, dim)` (keepdim), one run
/// of adjacent dims at a time, from the last run to the first: `first` for the first run it
/// meets, `rest` for the others. The result has the keepdim shape.
template <Floating T, class First, class Rest>
Tensor<T> reduce_runs(const Tensor<T>& x, const std::vector<int>& dims, First&& first, Rest&& rest) {
  Tensor<T> r = x.detach();
  Shape shape = x.shape();
  bool is_first = true;
  for (auto end = dims.rbegin(); end != dims.rend();) {
    auto begin = end;
    while (std::next(begin) != dims.rend() && *std::next(begin) == *begin - 1) ++begin;
    const int lo = *begin, hi = *end;
    std::int64_t outer = 1, extent = 1, inner = 1;
    for (int i = 0; i < shape.rank(); ++i) (i < lo ? outer : i > hi ? inner : extent) *= shape[i];
    const Tensor<T> slab = view_as_shape(r, Shape{outer, extent, inner});
    r = is_first ? first(slab, 1) : rest(slab, 1);
    for (int i = lo; i <= hi; ++i) shape[i] = 1;
    r = view_as_shape(r, shape);
    is_first = false;
    end = std::next(begin);
  }
  return r;
}

template <Floating T>
Tensor<T> sum_runs(const Tensor<T>& x, const std::vector<int>& dims) {
  auto add_up = [](const Tensor<T>& t, int d) { return backend::sum_dim(t, d, true); };
  return reduce_runs(x, dims, add_up, add_up);
}

/// The final shape of a reduction whose keepdim result is `r`.
template <Floating T>
Tensor<T> finish_reduction(const Tensor<T>& r, const Shape& in, const std::vector<int>& dims, bool keepdim) {
  return view_as_shape(r, keepdim ? keepdim_shape(in, dims) : drop_dims(in, dims));
}

inline std::vector<std::int64_t> as_dims(const std::vector<int>& ds) { return {ds.begin(), ds.end()}; }

/// 1 where `t` is non-zero, and t + (1 - that): a divisor that is t where t != 0 and 1 elsewhere,
/// still differentiable in t (the mask is a constant).
template <Floating T>
std::pair<Tensor<T>, Tensor<T>> nonzero_and_safe(const Tensor<T>& t) {
  Tensor<T> nonzero = backend::compare<backend::Compare::ne>(t.detach(), T(0));
  Tensor<T> fill = backend::rsub_scalar(nonzero, T(1));
  return {nonzero, add(t, fill)};
}

}  // namespace detail

/// Sum over `dims` (all when empty).
template <Floating T>
Tensor<T> sum(const Tensor<T>& x, std::vector<std::int64_t> dims = {}, bool keepdim = false) {
  const auto ds = detail::reduction_dims(dims, x.dim(), "sum");
  const Shape kept = detail::keepdim_shape(x.shape(), ds);
  Tensor<T> r = detail::finish_reduction(detail::sum_runs(x, ds), x.shape(), ds, keepdim);
  return record(
      "sum", std::move(r), {x},
      [kept](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, broadcast_to(reshape(g, kept), c.input(0).shape())); },
      [ds = detail::as_dims(ds), keepdim](const TangentContext<T>& c) { return sum(c.tangent(0), ds, keepdim); });
}

/// Mean over `dims` (all when empty).
template <Floating T>
Tensor<T> mean(const Tensor<T>& x, std::vector<std::int64_t> dims = {}, bool keepdim = false) {
  const auto ds = detail::reduction_dims(dims, x.dim(), "mean");
  const std::int64_t count = detail::reduced_count(x.shape(), ds);
  check(count > 0, "mean", "mean over an empty extent of shape ", x.shape());
  return mul(sum(x, std::move(dims), keepdim), T(1) / static_cast<T>(count));
}

/// Degrees of freedom var and stddev subtract from the element count: 1 is Bessel's correction
/// (the unbiased estimate), 0 the population variance.
struct Correction {
  std::int64_t value = 1;
};

namespace detail {
/// d var / dx contracted with `g_kept` (the gradient in keepdim shape): 2 (x - mean) g / (N - correction).
template <Floating T>
Tensor<T> var_backward(const Tensor<T>& x, const std::vector<std::int64_t>& dims, const Tensor<T>& g_kept, T denom) {
  return mul(sub(x, mean(x, dims, true)), mul(g_kept, T(2) / denom));
}
/// The tangent of var for a tangent dx of x: Σ 2 (x - mean) dx / (N - correction).
template <Floating T>
Tensor<T> var_tangent(const Tensor<T>& x, const std::vector<std::int64_t>& dims, const Tensor<T>& dx, T denom,
                      bool keepdim) {
  return mul(sum(mul(sub(x, mean(x, dims, true)), dx), dims, keepdim), T(2) / denom);
}

template <Floating T>
struct VarForward {
  std::vector<int> dims;
  Shape kept;
  T denom;
  Tensor<T> value;  // in keepdim shape
};

template <Floating T>
VarForward<T> var_forward(const Tensor<T>& x, std::vector<std::int64_t> dims, std::int64_t correction, const char* op) {
  VarForward<T> f;
  f.dims = reduction_dims(dims, x.dim(), op);
  f.kept = keepdim_shape(x.shape(), f.dims);
  const std::int64_t count = reduced_count(x.shape(), f.dims);
  check(count > 0, op, "reduction over an empty extent of shape ", x.shape());
  check(count - correction > 0, op, "correction ", correction, " leaves no degrees of freedom for ", count,
        " elements per output (input shape ", x.shape(), ")");
  f.denom = static_cast<T>(count - correction);
  // Two passes (mean, then squared deviations) for accuracy when the mean is large.
  const Tensor<T> avg = backend::div_scalar(sum_runs(x, f.dims), T(count));
  const Tensor<T> squares = backend::squared_difference(x, avg, x.shape());
  f.value = backend::div_scalar(sum_runs(squares, f.dims), f.denom);
  return f;
}
}  // namespace detail

/// Variance over `dims` (all when empty): Σ (x - mean)² / (N - correction). N - correction must
/// be positive (PyTorch returns NaN or inf there; here it is an error naming the shape).
template <Floating T>
Tensor<T> var(const Tensor<T>& x, std::vector<std::int64_t> dims, Correction correction, bool keepdim = false) {
  auto f = detail::var_forward(x, dims, correction.value, "var");
  const Tensor<T> out = detail::finish_reduction(f.value, x.shape(), f.dims, keepdim);
  const auto ds = detail::as_dims(f.dims);
  return record("var", out, {x},
                [ds, kept = f.kept, denom = f.denom](const Tensor<T>& g, BackwardContext<T>& c) {
                  c.set(0, detail::var_backward(c.input(0), ds, reshape(g, kept), denom));
                },
                [ds, denom = f.denom, keepdim](const TangentContext<T>& c) {
                  return detail::var_tangent(c.input(0), ds, c.tangent(0), denom, keepdim);
                });
}
/// Variance, unbiased (correction 1) by default.
template <Floating T>
Tensor<T> var(const Tensor<T>& x, std::vector<std::int64_t> dims = {}, bool unbiased = true, bool keepdim = false) {
  return var(x, std::move(dims), Correction{unbiased ? 1 : 0}, keepdim);
}

/// Standard deviation: sqrt(var). Where it is 0 (all reduced elements equal) its gradient is taken
/// as 0, as in PyTorch, instead of the 0/0 of the formula.
template <Floating T>
Tensor<T> stddev(const Tensor<T>& x, std::vector<std::int64_t> dims, Correction correction, bool keepdim = false) {
  auto f = detail::var_forward(x, dims, correction.value, "stddev");
  const Tensor<T> out = detail::finish_reduction(backend::sqrt(f.value),
                                                 x.shape(), f.dims, keepdim);
  const auto ds = detail::as_dims(f.dims);
  return record("stddev", out, {x},
                [ds, kept = f.kept, denom = f.denom](const Tensor<T>& g, BackwardContext<T>& c) {
                  // d sqrt(v) = dv / (2 sqrt(v)), with the division masked where sqrt(v) = 0.
                  const auto [nonzero, safe] = detail::nonzero_and_safe(reshape(c.output(), kept));
                  const Tensor<T> g_var = div(mul(reshape(g, kept), nonzero), mul(safe, T(2)));
                  c.set(0, detail::var_backward(c.input(0), ds, g_var, denom));
                },
                [ds, denom = f.denom, keepdim](const TangentContext<T>& c) {
                  const auto [nonzero, safe] = detail::nonzero_and_safe(c.output());
                  const Tensor<T> dvar = detail::var_tangent(c.input(0), ds, c.tangent(0), denom, keepdim);
                  return div(mul(dvar, nonzero), mul(safe, T(2)));
                });
}
template <Floating T>
Tensor<T> stddev(const Tensor<T>& x, std::vector<std::int64_t> dims = {}, bool unbiased = true, bool keepdim = false) {
  return stddev(x, std::move(dims), Correction{unbiased ? 1 : 0}, keepdim);
}

/// Values and their indices along the reduced dim, as max and min return them.
template <Floating T>
struct ValuesAndIndices {
  Tensor<T> values;
  IndexTensor indices;
};

namespace detail {
template <bool IsMax, Floating T>
ValuesAndIndices<T> extreme_along(const Tensor<T>& x, std::int64_t dim, bool keepdim, const char* op) {
  const int d = normalize_dim(dim, x.dim(), op);
  check(x.dim() == 0 || x.shape()[d] > 0, op, "cannot reduce over dim ", dim, " of extent 0 in shape ", x.shape());
  const Shape kept = x.dim() == 0 ? Shape{} : backend::reduced_shape(x.shape(), d, true);
  auto values = Tensor<T>::empty(kept);
  auto indices = IndexTensor::empty(kept);
  backend::extreme_dim<IsMax>(x, d, values, indices);
  const Shape shape = x.dim() == 0 || keepdim ? kept : backend::reduced_shape(x.shape(), d, false);
  Tensor<T> out = record(op, view_as_shape(values, shape), {x},
                         [indices, d, kept](const Tensor<T>& g, BackwardContext<T>& c) {
                           c.set(0, mul(reshape(g, kept), backend::index_mask<T>(indices, c.input(0).shape(), d)));
                         },
                         [indices, d, shape](const TangentContext<T>& c) {
                           // The tangent at the index each output took.
                           const Tensor<T>& x = c.input(0);
                           if (x.dim() == 0) return c.tangent(0);
                           const auto mask = backend::index_mask<T>(indices, x.shape(), d);
                           return reshape(sum(mul(c.tangent(0), mask), {d}, true), shape);
                         });
  return {out, view_as_shape(indices, shape)};
}

template <bool IsMax, Floating T>
Tensor<T> extreme_over(const Tensor<T>& x, std::vector<std::int64_t> dims, bool keepdim, const char* op) {
  const auto ds = reduction_dims(dims, x.dim(), op);
  for (int d : ds)
    check(x.shape()[d] > 0, op, "cannot reduce over dim ", d, " of extent 0 in shape ", x.shape());
  auto extreme = [](const Tensor<T>& t, int d) {
    auto out = Tensor<T>::empty(backend::reduced_shape(t.shape(), d, true));
    backend::extreme_dim<IsMax>(t, d, out);
    return out;
  };
  const Tensor<T> r = reduce_runs(x, ds, extreme, extreme);
  const Shape kept = keepdim_shape(x.shape(), ds);
  // Ties share the derivative equally: weight = [x == extreme] / (number of ties), a constant.
  auto weight_of = [ds, kept](const Tensor<T>& input, const Tensor<T>& output) {
    const Tensor<T> x = input.detach();
    const Tensor<T> hit = backend::compare<backend::Compare::eq>(x, view_as_shape(output.detach(), kept), x.shape());
    const Tensor<T> ties = sum_runs(hit, ds);
    return backend::div(hit, ties, x.shape());
  };
  return record(op, finish_reduction(r, x.shape(), ds, keepdim), {x},
                [weight_of, kept](const Tensor<T>& g, BackwardContext<T>& c) {
                  c.set(0, mul(reshape(g, kept), weight_of(c.input(0), c.output())));
                },
                [weight_of, ds = as_dims(ds), keepdim](const TangentContext<T>& c) {
                  return sum(mul(c.tangent(0), weight_of(c.input(0), c.output())), ds, keepdim);
                });
}

template <bool IsMax, Floating T>
IndexTensor arg_extreme(const Tensor<T>& x, std::int64_t dim, bool keepdim, const char* op) {
  NoGradGuard no_grad;
  return extreme_along<IsMax>(x.detach(), dim, keepdim, op).indices;
}
}  // namespace detail

/// The max along `dim` and its index (the first one among ties; a NaN counts as the max).
/// The gradient flows to that index only.
template <Floating T>
ValuesAndIndices<T> max(const Tensor<T>& x, std::int64_t dim, bool keepdim = false) {
  return detail::extreme_along<true>(x, dim, keepdim, "max");
}
/// The min along `dim` and its index (the first one among ties; a NaN counts as the min).
template <Floating T>
ValuesAndIndices<T> min(const Tensor<T>& x, std::int64_t dim, bool keepdim = false) {
  return detail::extreme_along<false>(x, dim, keepdim, "min");
}

/// The max over `dims` (all when empty); ties share the gradient equally, as in PyTorch.
template <Floating T>
Tensor<T> amax(const Tensor<T>& x, std::vector<std::int64_t> dims = {}, bool keepdim = false) {
  return detail::extreme_over<true>(x, std::move(dims), keepdim, "amax");
}
/// The min over `dims` (all when empty); ties share the gradient equally, as in PyTorch.
template <Floating T>
Tensor<T> amin(const Tensor<T>& x, std::vector<std::int64_t> dims = {}, bool keepdim = false) {
  return detail::extreme_over<false>(x, std::move(dims), keepdim, "amin");
}

/// Index of the max along `dim` (the first among ties).
template <Floating T>
IndexTensor argmax(const Tensor<T>& x, std::int64_t dim, bool keepdim = false) {
  return detail::arg_extreme<true>(x, dim, keepdim, "argmax");
}
/// Index of the max of the flattened tensor, as a rank-0 tensor.
template <Floating T>
IndexTensor argmax(const Tensor<T>& x) {
  return detail::arg_extreme<true>(detail::view_as_shape(x, Shape{x.numel()}), 0, false, "argmax");
}
template <Floating T>
IndexTensor argmin(const Tensor<T>& x, std::int64_t dim, bool keepdim = false) {
  return detail::arg_extreme<false>(x, dim, keepdim, "argmin");
}
template <Floating T>
IndexTensor argmin(const Tensor<T>& x) {
  return detail::arg_extreme<false>(detail::view_as_shape(x, Shape{x.numel()}), 0, false, "argmin");
}

/// log Σ exp(x) over `dims` (all when empty), computed stably: max + log Σ exp(x - max), so
/// logsumexp([1000, 1000]) is 1000 + log 2. Over an empty extent it is -inf.
template <Floating T>
Tensor<T> logsumexp(const Tensor<T>& x, std::vector<std::int64_t> dims = {}, bool keepdim = false) {
  const auto ds = detail::reduction_dims(dims, x.dim(), "logsumexp");
  const Shape kept = detail::keepdim_shape(x.shape(), ds);
  auto lse = [](const Tensor<T>& t, int d) { return backend::logsumexp_dim(t, d, true); };
  const Tensor<T> r = detail::reduce_runs(x, ds, lse, lse);
  return record("logsumexp", detail::finish_reduction(r, x.shape(), ds, keepdim), {x},
                [kept](const Tensor<T>& g, BackwardContext<T>& c) {
                  // d/dx = exp(x - logsumexp(x)), the softmax over the reduced dims.
                  c.set(0, mul(reshape(g, kept), exp(sub(c.input(0), reshape(c.output(), kept)))));
                },
                [kept, ds = detail::as_dims(ds), keepdim](const TangentContext<T>& c) {
                  return sum(mul(c.tangent(0), exp(sub(c.input(0), reshape(c.output(), kept)))), ds, keepdim);
                });
}

/// The p-norm over `dims` (all when empty), p = 1 or 2. Gradients: sign(x) for p = 1 (0 at 0);
/// x / ||x|| for p = 2, and 0 where the norm is 0 (the minimum-norm subgradient, as in PyTorch).
template <Floating T>
Tensor<T> norm(const Tensor<T>& x, double p = 2, std::vector<std::int64_t> dims = {}, bool keepdim = false) {
  check(p == 1 || p == 2, "norm", "p = ", p, " is not supported (only 1 and 2), for input of shape ", x.shape());
  const auto ds = detail::reduction_dims(dims, x.dim(), "norm");
  const Shape kept = detail::keepdim_shape(x.shape(), ds);
  auto add_up = [](const Tensor<T>& t, int d) { return backend::sum_dim(t, d, true); };
  if (p == 1) {
    auto abs_sum = [](const Tensor<T>& t, int d) { return backend::abs_sum_dim(t, d, true); };
    const Tensor<T> r = detail::reduce_runs(x, ds, abs_sum, add_up);
    return record("norm_l1", detail::finish_reduction(r, x.shape(), ds, keepdim), {x},
                  [kept](const Tensor<T>& g, BackwardContext<T>& c) {
                    const Tensor<T> sign = backend::abs_grad(c.input(0).detach());
                    c.set(0, mul(reshape(g, kept), sign));
                  },
                  [ds = detail::as_dims(ds), keepdim](const TangentContext<T>& c) {
                    return sum(mul(c.tangent(0), backend::abs_grad(c.input(0).detach())), ds, keepdim);
                  });
  }
  auto squares = [](const Tensor<T>& t, int d) { return backend::squared_norm_dim(t, d, true); };
  const Tensor<T> r = backend::sqrt(detail::reduce_runs(x, ds, squares, add_up));
  return record("norm_l2", detail::finish_reduction(r, x.shape(), ds, keepdim), {x},
                [kept](const Tensor<T>& g, BackwardContext<T>& c) {
                  const auto [nonzero, safe] = detail::nonzero_and_safe(reshape(c.output(), kept));
                  c.set(0, mul(c.input(0), div(mul(reshape(g, kept), nonzero), safe)));
                },
                [ds = detail::as_dims(ds), keepdim](const TangentContext<T>& c) {
                  // d||x|| = <x, dx> / ||x||, 0 where the norm is 0.
                  const auto [nonzero, safe] = detail::nonzero_and_safe(c.output());
                  return div(mul(sum(mul(c.input(0), c.tangent(0)), ds, keepdim), nonzero), safe);
                });
}

}  // namespace metagrad
