// SPDX-License-Identifier: MIT
// The element-wise unary CPU kernels, each named by what it computes: the Eigen array expression
// of one op (or of one of its constant backward masks) run through map_unary. The ops reach
// them through the backend facade (backend/unary.hpp), never directly.
#pragma once
#include <type_traits>

#include "metagrad/backend/cpu/elementwise.hpp"

namespace metagrad::cpu {

// ---- arithmetic with a constant ----
template <Floating T>
Tensor<T> neg(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return -a; }); }
template <Floating T>
Tensor<T> add_scalar(const Tensor<T>& x, T s) { return map_unary(x, [s](const auto& a) { return a + s; }); }
template <Floating T>
Tensor<T> mul_scalar(const Tensor<T>& x, T s) { return map_unary(x, [s](const auto& a) { return a * s; }); }
/// x / s, divided (not multiplied by 1 / s), as the reductions' means need.
template <Floating T>
Tensor<T> div_scalar(const Tensor<T>& x, T s) { return map_unary(x, [s](const auto& a) { return a / s; }); }
/// s / x
template <Floating T>
Tensor<T> rdiv_scalar(const Tensor<T>& x, T s) { return map_unary(x, [s](const auto& a) { return s / a; }); }
/// s - x
template <Floating T>
Tensor<T> rsub_scalar(const Tensor<T>& x, T s) { return map_unary(x, [s](const auto& a) { return s - a; }); }
/// x converted to R (e.g. an index mask to floating point).
template <Element R, Element T>
Tensor<R> cast(const Tensor<T>& x) { return map_unary<R>(x, [](const auto& a) { return a; }); }

// ---- elementary functions ----
template <Floating T>
Tensor<T> exp(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return exp0(a); }); }
template <Floating T>
Tensor<T> log(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return a.log(); }); }
template <Floating T>
Tensor<T> log1p(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return a.log1p(); }); }
template <Floating T>
Tensor<T> square(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return a.square(); }); }
template <Floating T>
Tensor<T> sqrt(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return a.sqrt(); }); }
/// std::sqrt per element, correctly rounded: Eigen's packet sqrt is an approximation under
/// EIGEN_FAST_MATH (its default) on AVX-512.
template <Floating T>
Tensor<T> exact_sqrt(const Tensor<T>& x) {
  return map_unary(x, [](const auto& a) { return a.unaryExpr([](T v) { return std::sqrt(v); }); });
}
/// 1 / sqrt(x) as two correctly rounded operations (not the rsqrt instruction).
template <Floating T>
Tensor<T> rsqrt(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return a.sqrt().inverse(); }); }
/// x ** p for p != 0; the exponents PyTorch special-cases take its exact paths.
template <Floating T>
Tensor<T> pow_scalar(const Tensor<T>& x, T p) {
  if (p == T(1)) return map_unary(x, [](const auto& a) { return a; });
  if (p == T(2)) return map_unary(x, [](const auto& a) { return a.square(); });
  if (p == T(3)) return map_unary(x, [](const auto& a) { return a.cube(); });
  if (p == T(0.5)) return map_unary(x, [](const auto& a) { return a.sqrt(); });
  if (p == T(-0.5)) return map_unary(x, [](const auto& a) { return a.sqrt().inverse(); });
  if (p == T(-1)) return map_unary(x, [](const auto& a) { return a.inverse(); });
  if (p == T(-2)) return map_unary(x, [](const auto& a) { return a.square().inverse(); });
  return map_unary(x, [p](const auto& a) { return a.pow(T(p)); });
}
/// base ** x for a constant base.
template <Floating T>
Tensor<T> pow_scalar_base(T base, const Tensor<T>& x) {
  return map_unary(x, [base](const auto& a) { return Eigen::pow(base, a); });
}
template <Floating T>
Tensor<T> abs(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return a.abs(); }); }
/// Eigen's sign(x): d|x|/dx with 0 at 0.
template <Floating T>
Tensor<T> abs_grad(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return a.sign(); }); }
template <Floating T>
Tensor<T> sin(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return a.sin(); }); }
template <Floating T>
Tensor<T> cos(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return a.cos(); }); }

// ---- activations and their constant masks ----
template <Floating T>
Tensor<T> tanh(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return a.tanh(); }); }
/// 1 / (1 + exp(-x)) as PyTorch computes it: relative accuracy in both tails (Eigen's float
/// logistic() is off by thousands of ulp for x < -8). Eigen's exp(-inf) ~ 1e-308 is harmless
/// here: 1 + it rounds to 1.
template <Floating T>
Tensor<T> sigmoid(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return (T(1) + (-a).exp()).inverse(); }); }
/// max(x, 0), NaN staying NaN.
template <Floating T>
Tensor<T> relu(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return nan_max(a, T(0)); }); }
template <Floating T>
Tensor<T> leaky_relu(const Tensor<T>& x, T slope) {
  return map_unary(x, [slope](const auto& a) { return select(compare<Compare::gt>(a, T(0)), a, a * slope); });
}
/// 1 where x > 0, else slope.
template <Floating T>
Tensor<T> leaky_relu_grad(const Tensor<T>& x, T slope) {
  return map_unary(x, [slope](const auto& a) { return select(compare<Compare::gt>(a, T(0)), T(1), slope); });
}
template <Floating T>
Tensor<T> elu(const Tensor<T>& x, T alpha) {
  return map_unary(x, [alpha](const auto& a) { return select(compare<Compare::gt>(a, T(0)), a, a.expm1() * alpha); });
}
/// 0 where x > 0, else alpha.
template <Floating T>
Tensor<T> elu_alpha_below(const Tensor<T>& x, T alpha) {
  return map_unary(x, [alpha](const auto& a) { return select(compare<Compare::gt>(a, T(0)), T(0), alpha); });
}
/// log(1 + exp(beta x)) / beta, and exactly x where beta x > threshold.
template <Floating T>
Tensor<T> softplus(const Tensor<T>& x, T beta, T threshold) {
  return map_unary(x, [beta, threshold](const auto& a) {
    const auto z = a * beta;
    return select(compare<Compare::gt>(z, threshold), a, exp0(z).log1p() / beta);
  });
}
/// 0 where beta x > threshold (softplus's linear part), else beta.
template <Floating T>
Tensor<T> softplus_beta_below(const Tensor<T>& x, T beta, T threshold) {
  return map_unary(x, [beta, threshold](const auto& a) {
    return select(compare<Compare::gt>(a * beta, threshold), T(0), beta);
  });
}
/// x Φ(x), or its tanh approximation.
template <Floating T>
Tensor<T> gelu(const Tensor<T>& x, bool tanh_approximation) {
  return tanh_approximation ? map_unary(x, [](const auto& a) { return gelu_tanh(a); })
                            : map_unary(x, [](const auto& a) { return cpu::gelu(a); });
}
/// x limited to [lo, hi], NaN staying NaN.
template <Floating T>
Tensor<T> clamp(const Tensor<T>& x, T lo, T hi) {
  return map_unary(x, [lo, hi](const auto& a) {
    return select(compare<Compare::lt>(a, lo), lo, select(compare<Compare::gt>(a, hi), hi, a));
  });
}
/// 1 where lo <= x <= hi, else 0.
template <Floating T>
Tensor<T> clamp_grad(const Tensor<T>& x, T lo, T hi) {
  return map_unary(x, [lo, hi](const auto& a) { return compare<Compare::ge>(a, lo) * compare<Compare::le>(a, hi); });
}

// ---- masks and tests ----
/// The 0/1 mask of x C s.
template <Compare C, Element T>
Tensor<T> compare_scalar(const Tensor<T>& x, T s) { return map_unary(x, [s](const auto& a) { return compare<C>(a, s); }); }
/// -1, 0 or 1 by the sign of x; NaN stays NaN.
template <Floating T>
Tensor<T> sign(const Tensor<T>& x) {
  return map_unary(x, [](const auto& a) {
    return select(compare<Compare::ne>(a, a), a, compare<Compare::gt>(a, T(0)) - compare<Compare::lt>(a, T(0)));
  });
}
/// 1 where x is finite: x - x is 0 for finite x and NaN for NaN or ±inf.
template <Floating T>
Tensor<T> is_finite(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return compare<Compare::eq>(a - a, T(0)); }); }
template <Floating T>
Tensor<T> is_nan(const Tensor<T>& x) { return map_unary(x, [](const auto& a) { return compare<Compare::ne>(a, a); }); }
template <Floating T>
bool all_finite(const Tensor<T>& x) { return ConstArrayMap<T>(x.data(), x.numel()).isFinite().all(); }

}  // namespace metagrad::cpu
