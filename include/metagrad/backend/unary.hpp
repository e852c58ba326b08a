// SPDX-License-Identifier: MIT
// Backend facade, element-wise unary family: each function is named by what it computes and
// runs the kernel of its tensor's device (dispatch.hpp). Ops call these, never cpu:: kernels.
#pragma once
#include "metagrad/backend/cpu/unary.hpp"
#include "metagrad/backend/dispatch.hpp"
#include "metagrad/backend/types.hpp"

namespace metagrad::backend {

/// Constants of gelu's tanh approximation, shared by its kernels and its second derivative.
inline constexpr double kGeluTanhBeta = cpu::detail::kGeluTanhBeta;
inline constexpr double kGeluTanhKappa = cpu::detail::kGeluTanhKappa;

template <Floating T>
Tensor<T> neg(const Tensor<T>& x) { return dispatch("neg", [&] { return cpu::neg(x); }, x); }
template <Floating T>
Tensor<T> add_scalar(const Tensor<T>& x, T s) { return dispatch("add_scalar", [&] { return cpu::add_scalar(x, s); }, x); }
template <Floating T>
Tensor<T> mul_scalar(const Tensor<T>& x, T s) { return dispatch("mul_scalar", [&] { return cpu::mul_scalar(x, s); }, x); }
/// x / s (a true division, not a multiplication by 1 / s).
template <Floating T>
Tensor<T> div_scalar(const Tensor<T>& x, T s) { return dispatch("div_scalar", [&] { return cpu::div_scalar(x, s); }, x); }
/// s / x
template <Floating T>
Tensor<T> rdiv_scalar(const Tensor<T>& x, T s) { return dispatch("rdiv_scalar", [&] { return cpu::rdiv_scalar(x, s); }, x); }
/// s - x
template <Floating T>
Tensor<T> rsub_scalar(const Tensor<T>& x, T s) { return dispatch("rsub_scalar", [&] { return cpu::rsub_scalar(x, s); }, x); }
template <Element R, Element T>
Tensor<R> cast(const Tensor<T>& x) { return dispatch("cast", [&] { return cpu::cast<R>(x); }, x); }

template <Floating T>
Tensor<T> exp(const Tensor<T>& x) { return dispatch("exp", [&] { return cpu::exp(x); }, x); }
template <Floating T>
Tensor<T> log(const Tensor<T>& x) { return dispatch("log", [&] { return cpu::log(x); }, x); }
template <Floating T>
Tensor<T> log1p(const Tensor<T>& x) { return dispatch("log1p", [&] { return cpu::log1p(x); }, x); }
template <Floating T>
Tensor<T> square(const Tensor<T>& x) { return dispatch("square", [&] { return cpu::square(x); }, x); }
template <Floating T>
Tensor<T> sqrt(const Tensor<T>& x) { return dispatch("sqrt", [&] { return cpu::sqrt(x); }, x); }
/// sqrt correctly rounded in every element (the vectorised sqrt may not be).
template <Floating T>
Tensor<T> exact_sqrt(const Tensor<T>& x) { return dispatch("exact_sqrt", [&] { return cpu::exact_sqrt(x); }, x); }
template <Floating T>
Tensor<T> rsqrt(const Tensor<T>& x) { return dispatch("rsqrt", [&] { return cpu::rsqrt(x); }, x); }
/// x ** p for p != 0.
template <Floating T>
Tensor<T> pow_scalar(const Tensor<T>& x, T p) { return dispatch("pow", [&] { return cpu::pow_scalar(x, p); }, x); }
/// base ** x
template <Floating T>
Tensor<T> pow_scalar_base(T base, const Tensor<T>& x) {
  return dispatch("pow_scalar_base", [&] { return cpu::pow_scalar_base(base, x); }, x);
}
template <Floating T>
Tensor<T> abs(const Tensor<T>& x) { return dispatch("abs", [&] { return cpu::abs(x); }, x); }
/// d|x|/dx: -1, 0 or 1.
template <Floating T>
Tensor<T> abs_grad(const Tensor<T>& x) { return dispatch("abs_grad", [&] { return cpu::abs_grad(x); }, x); }
template <Floating T>
Tensor<T> sin(const Tensor<T>& x) { return dispatch("sin", [&] { return cpu::sin(x); }, x); }
template <Floating T>
Tensor<T> cos(const Tensor<T>& x) { return dispatch("cos", [&] { return cpu::cos(x); }, x); }

template <Floating T>
Tensor<T> tanh(const Tensor<T>& x) { return dispatch("tanh", [&] { return cpu::tanh(x); }, x); }
template <Floating T>
Tensor<T> sigmoid(const Tensor<T>& x) { return dispatch("sigmoid", [&] { return cpu::sigmoid(x); }, x); }
template <Floating T>
Tensor<T> relu(const Tensor<T>& x) { return dispatch("relu", [&] { return cpu::relu(x); }, x); }
template <Floating T>
Tensor<T> leaky_relu(const Tensor<T>& x, T slope) { return dispatch("leaky_relu", [&] { return cpu::leaky_relu(x, slope); }, x); }
/// 1 where x > 0, else slope.
template <Floating T>
Tensor<T> leaky_relu_grad(const Tensor<T>& x, T slope) {
  return dispatch("leaky_relu_grad", [&] { return cpu::leaky_relu_grad(x, slope); }, x);
}
template <Floating T>
Tensor<T> elu(const Tensor<T>& x, T alpha) { return dispatch("elu", [&] { return cpu::elu(x, alpha); }, x); }
/// 0 where x > 0, else alpha.
template <Floating T>
Tensor<T> elu_alpha_below(const Tensor<T>& x, T alpha) {
  return dispatch("elu_alpha_below", [&] { return cpu::elu_alpha_below(x, alpha); }, x);
}
template <Floating T>
Tensor<T> softplus(const Tensor<T>& x, T beta, T threshold) {
  return dispatch("softplus", [&] { return cpu::softplus(x, beta, threshold); }, x);
}
/// 0 where beta x > threshold, else beta.
template <Floating T>
Tensor<T> softplus_beta_below(const Tensor<T>& x, T beta, T threshold) {
  return dispatch("softplus_beta_below", [&] { return cpu::softplus_beta_below(x, beta, threshold); }, x);
}
template <Floating T>
Tensor<T> gelu(const Tensor<T>& x, bool tanh_approximation) {
  return dispatch("gelu", [&] { return cpu::gelu(x, tanh_approximation); }, x);
}
template <Floating T>
Tensor<T> clamp(const Tensor<T>& x, T lo, T hi) { return dispatch("clamp", [&] { return cpu::clamp(x, lo, hi); }, x); }
/// 1 where lo <= x <= hi, else 0.
template <Floating T>
Tensor<T> clamp_grad(const Tensor<T>& x, T lo, T hi) { return dispatch("clamp_grad", [&] { return cpu::clamp_grad(x, lo, hi); }, x); }

/// -1, 0 or 1 by the sign of x; NaN stays NaN.
template <Floating T>
Tensor<T> sign(const Tensor<T>& x) { return dispatch("sign", [&] { return cpu::sign(x); }, x); }
template <Floating T>
Tensor<T> is_finite(const Tensor<T>& x) { return dispatch("is_finite", [&] { return cpu::is_finite(x); }, x); }
template <Floating T>
Tensor<T> is_nan(const Tensor<T>& x) { return dispatch("is_nan", [&] { return cpu::is_nan(x); }, x); }
template <Floating T>
bool all_finite(const Tensor<T>& x) { return dispatch("all_finite", [&] { return cpu::all_finite(x); }, x); }

}  // namespace metagrad::backend
