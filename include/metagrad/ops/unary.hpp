// SPDX-License-Identifier: MIT
// Element-wise unary ops and activations. Each backward rule is written with ops (often reusing
// the output), so it differentiates again. At a kink (abs, relu, leaky_relu, elu, clamp) the
// derivative is a constant mask computed inside the rule, with PyTorch's value at the kink.
//
// The activations that dominate MLPs (relu, tanh, sigmoid, softplus, gelu) route their backward
// through a fused op such as tanh_backward(g, y): one pass, no temporaries. A fused op is itself
// differentiable (its own rule is written with ops), so the create_graph path stays exact; this
// is PyTorch's sigmoid_backward design.
#pragma once
#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <type_traits>

#include "metagrad/backend/binary.hpp"
#include "metagrad/backend/compare.hpp"
#include "metagrad/backend/unary.hpp"
#include "metagrad/core/creation.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/compare.hpp"

namespace metagrad {

enum class GeluApproximate { none, tanh };

namespace detail {
template <Floating T>
void check_same_shape(const Tensor<T>& g, const Tensor<T>& x, const char* op) {
  check(g.shape() == x.shape(), op, "the gradient of shape ", g.shape(), " does not match the input of shape ", x.shape());
}
inline constexpr double kInvSqrt2Pi = 0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2;  // 1/sqrt(2π)
}  // namespace detail

// ---- fused first-order backward ops ----

/// g * (x > 0): relu's input gradient in one pass.
template <Floating T>
Tensor<T> relu_backward(const Tensor<T>& g, const Tensor<T>& x) {
  detail::check_same_shape(g, x, "relu_backward");
  auto out = backend::relu_backward(g, x);
  return record("relu_backward", std::move(out), {g, x}, [](const Tensor<T>& u, BackwardContext<T>& c) {
    // Linear in g. The x-derivative is zero almost everywhere; it is left unset rather than a
    // tensor of zeros, so the engine does not walk a zero gradient back through x's graph.
    if (c.wants(0)) c.set(0, relu_backward(u, c.input(1)));
  }, [](const TangentContext<T>& c) {
    // Likewise, only g's tangent moves the result (x's derivative is zero almost everywhere).
    return c.has_tangent(0) ? relu_backward(c.tangent(0), c.input(1)) : Tensor<T>();
  });
}

/// g * (1 - y²) for y = tanh(x): tanh's input gradient in one pass.
template <Floating T>
Tensor<T> tanh_backward(const Tensor<T>& g, const Tensor<T>& y) {
  detail::check_same_shape(g, y, "tanh_backward");
  auto out = backend::tanh_backward(g, y);
  return record("tanh_backward", std::move(out), {g, y}, [](const Tensor<T>& u, BackwardContext<T>& c) {
    const auto &g = c.input(0), &y = c.input(1);
    if (c.wants(0)) c.set(0, tanh_backward(u, y));
    if (c.wants(1)) c.set(1, mul(mul(u, g), mul(y, T(-2))));
  }, [](const TangentContext<T>& c) {
    const auto &g = c.input(0), &y = c.input(1);
    const Tensor<T> dg = c.has_tangent(0) ? tanh_backward(c.tangent(0), y) : Tensor<T>();
    const Tensor<T> dy = c.has_tangent(1) ? mul(mul(c.tangent(1), g), mul(y, T(-2))) : Tensor<T>();
    return detail::add_terms(dg, dy, c.output_shape());
  });
}

/// g * y * (1 - y) for y = sigmoid(x): sigmoid's input gradient in one pass.
template <Floating T>
Tensor<T> sigmoid_backward(const Tensor<T>& g, const Tensor<T>& y) {
  detail::check_same_shape(g, y, "sigmoid_backward");
  auto out = backend::sigmoid_backward(g, y);
  return record("sigmoid_backward", std::move(out), {g, y}, [](const Tensor<T>& u, BackwardContext<T>& c) {
    const auto &g = c.input(0), &y = c.input(1);
    if (c.wants(0)) c.set(0, sigmoid_backward(u, y));
    if (c.wants(1)) c.set(1, mul(mul(u, g), add(mul(y, T(-2)), T(1))));  // d/dy y(1-y) = 1 - 2y
  }, [](const TangentContext<T>& c) {
    const auto &g = c.input(0), &y = c.input(1);
    const Tensor<T> dg = c.has_tangent(0) ? sigmoid_backward(c.tangent(0), y) : Tensor<T>();
    const Tensor<T> dy = c.has_tangent(1) ? mul(mul(c.tangent(1), g), add(mul(y, T(-2)), T(1))) : Tensor<T>();
    return detail::add_terms(dg, dy, c.output_shape());
  });
}

template <Floating T>
Tensor<T> sigmoid(const Tensor<T>& x);

namespace detail {
/// v * softplus''(x) (element-wise): d/dx sigmoid(beta x) = beta s (1 - s), and 0 on the linear part.
template <Floating T>
Tensor<T> softplus_second(const Tensor<T>& v, const Tensor<T>& x, T beta, T threshold) {
  const auto beta_below = backend::softplus_beta_below(x, beta, threshold);
  return sigmoid_backward(mul(v, beta_below), sigmoid(mul(x, beta)));
}
}  // namespace detail

/// g * sigmoid(beta x) where beta x <= threshold, else g: softplus's input gradient in one pass.
template <Floating T>
Tensor<T> softplus_backward(const Tensor<T>& g, const Tensor<T>& x, std::type_identity_t<T> beta,
                            std::type_identity_t<T> threshold) {
  detail::check_same_shape(g, x, "softplus_backward");
  auto out = backend::softplus_backward(g, x, T(beta), T(threshold));
  return record("softplus_backward", std::move(out), {g, x},
                [beta, threshold](const Tensor<T>& u, BackwardContext<T>& c) {
                  const auto &g = c.input(0), &x = c.input(1);
                  if (c.wants(0)) c.set(0, softplus_backward(u, x, T(beta), T(threshold)));
                  if (c.wants(1)) c.set(1, detail::softplus_second(mul(u, g), x, T(beta), T(threshold)));
                },
                [beta, threshold](const TangentContext<T>& c) {
                  const auto &g = c.input(0), &x = c.input(1);
                  const Tensor<T> dg = c.has_tangent(0) ? softplus_backward(c.tangent(0), x, T(beta), T(threshold)) : Tensor<T>();
                  const Tensor<T> dx =
                      c.has_tangent(1) ? detail::softplus_second(mul(c.tangent(1), g), x, T(beta), T(threshold)) : Tensor<T>();
                  return detail::add_terms(dg, dx, c.output_shape());
                });
}

/// g * gelu'(x), exact (erf) or with the tanh approximation: gelu's input gradient in one pass.
template <Floating T>
Tensor<T> gelu_backward(const Tensor<T>& g, const Tensor<T>& x, GeluApproximate approximate = GeluApproximate::none);

// ---- elementary functions ----

template <Floating T>
Tensor<T> exp(const Tensor<T>& x) {
  return record("exp", backend::exp(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, mul(g, c.output())); },
                [](const TangentContext<T>& c) { return mul(c.tangent(0), c.output()); });
}

template <Floating T>
Tensor<T> log(const Tensor<T>& x) {
  return record("log", backend::log(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, div(g, c.input(0))); },
                [](const TangentContext<T>& c) { return div(c.tangent(0), c.input(0)); });
}

/// log(1 + x), accurate for small x.
template <Floating T>
Tensor<T> log1p(const Tensor<T>& x) {
  return record("log1p", backend::log1p(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, div(g, add(c.input(0), T(1)))); },
                [](const TangentContext<T>& c) { return div(c.tangent(0), add(c.input(0), T(1))); });
}

template <Floating T>
Tensor<T> square(const Tensor<T>& x) {
  return record("square", backend::square(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, mul(mul(g, c.input(0)), T(2))); },
                [](const TangentContext<T>& c) { return mul(mul(c.tangent(0), c.input(0)), T(2)); });
}

template <Floating T>
Tensor<T> sqrt(const Tensor<T>& x) {
  return record("sqrt", backend::sqrt(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, div(mul(g, T(0.5)), c.output())); },
                [](const TangentContext<T>& c) { return div(mul(c.tangent(0), T(0.5)), c.output()); });
}

template <Floating T>
Tensor<T> pow(const Tensor<T>& x, std::type_identity_t<T> p);

/// 1 / sqrt(x), computed as exactly that (two correctly rounded operations, as PyTorch does)
/// rather than with the rsqrt instruction's Newton refinement.
template <Floating T>
Tensor<T> rsqrt(const Tensor<T>& x) {
  return record("rsqrt", backend::rsqrt(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) {
                  c.set(0, mul(mul(g, T(-0.5)), pow(c.output(), T(3))));  // d/dx x^-1/2 = -1/2 y³
                },
                [](const TangentContext<T>& c) { return mul(mul(c.tangent(0), T(-0.5)), pow(c.output(), T(3))); });
}

/// x ** p for a constant exponent. Exponents PyTorch special-cases (0, 1, ±1/2, -1, 2, 3, -2)
/// take the same exact paths; others use the vectorised pow (NaN for x < 0 and non-integer p).
template <Floating T>
Tensor<T> pow(const Tensor<T>& x, std::type_identity_t<T> p) {
  auto out = [&] {
    if (p == T(0)) return full_like(x, T(1));
    return backend::pow_scalar(x, T(p));
  }();
  return record("pow", std::move(out), {x}, [p](const Tensor<T>& g, BackwardContext<T>& c) {
    // p = 0 has a zero gradient even where x^-1 would be infinite (as in PyTorch).
    if (p == T(0)) c.set(0, zeros_like(c.input(0)));
    else c.set(0, mul(g, mul(pow(c.input(0), T(p - 1)), T(p))));
  }, [p](const TangentContext<T>& c) {
    return p == T(0) ? Tensor<T>() : mul(c.tangent(0), mul(pow(c.input(0), T(p - 1)), T(p)));
  });
}

/// |x|; the gradient at 0 is 0 (sign(0)), as in PyTorch.
template <Floating T>
Tensor<T> abs(const Tensor<T>& x) {
  return record("abs", backend::abs(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, mul(g, sign(c.input(0)))); },
                [](const TangentContext<T>& c) { return mul(c.tangent(0), sign(c.input(0))); });
}

template <Floating T>
Tensor<T> cos(const Tensor<T>& x);

template <Floating T>
Tensor<T> sin(const Tensor<T>& x) {
  return record("sin", backend::sin(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, mul(g, cos(c.input(0)))); },
                [](const TangentContext<T>& c) { return mul(c.tangent(0), cos(c.input(0))); });
}

template <Floating T>
Tensor<T> cos(const Tensor<T>& x) {
  return record("cos", backend::cos(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, neg(mul(g, sin(c.input(0))))); },
                [](const TangentContext<T>& c) { return neg(mul(c.tangent(0), sin(c.input(0)))); });
}

// ---- activations ----

template <Floating T>
Tensor<T> tanh(const Tensor<T>& x) {
  return record("tanh", backend::tanh(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, tanh_backward(g, c.output())); },
                [](const TangentContext<T>& c) { return tanh_backward(c.tangent(0), c.output()); });
}

template <Floating T>
Tensor<T> sigmoid(const Tensor<T>& x) {
  // 1 / (1 + exp(-x)) as PyTorch computes it, accurate in both tails (see the kernel).
  return record("sigmoid", backend::sigmoid(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, sigmoid_backward(g, c.output())); },
                [](const TangentContext<T>& c) { return sigmoid_backward(c.tangent(0), c.output()); });
}

/// max(x, 0), NaN staying NaN; the gradient at 0 is 0, as in PyTorch.
template <Floating T>
Tensor<T> relu(const Tensor<T>& x) {
  return record("relu", backend::relu(x),
                {x}, [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, relu_backward(g, c.input(0))); },
                [](const TangentContext<T>& c) { return relu_backward(c.tangent(0), c.input(0)); });
}

/// x where x > 0, else slope * x; the gradient at 0 is slope, as in PyTorch.
template <Floating T>
Tensor<T> leaky_relu(const Tensor<T>& x, std::type_identity_t<T> slope = T(0.01)) {
  auto out = backend::leaky_relu(x, T(slope));
  return record("leaky_relu", std::move(out), {x}, [slope](const Tensor<T>& g, BackwardContext<T>& c) {
    c.set(0, mul(g, backend::leaky_relu_grad(c.input(0), T(slope))));
  }, [slope](const TangentContext<T>& c) { return mul(c.tangent(0), backend::leaky_relu_grad(c.input(0), T(slope))); });
}

template <Floating T>
Tensor<T> clamp(const Tensor<T>& x, std::optional<std::type_identity_t<T>> min, std::optional<std::type_identity_t<T>> max);

/// x where x > 0, else alpha (exp(x) - 1); the gradient at 0 is alpha, as in PyTorch.
template <Floating T>
Tensor<T> elu(const Tensor<T>& x, std::type_identity_t<T> alpha = T(1)) {
  auto out = backend::elu(x, T(alpha));
  // elu'(x): alpha exp(x) on x <= 0, from exp(min(x, 0)) so that a large positive x cannot
  // overflow into inf * 0. (y + alpha would cancel catastrophically for very negative x.)
  auto slope_at = [alpha](const Tensor<T>& x) {
    const auto positive = backend::compare<backend::Compare::gt>(x, T(0));
    const auto alpha_below = backend::elu_alpha_below(x, T(alpha));
    return add(mul(exp(clamp(x, std::nullopt, T(0))), alpha_below), positive);
  };
  return record(
      "elu", std::move(out), {x},
      [slope_at](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, mul(g, slope_at(c.input(0)))); },
      [slope_at](const TangentContext<T>& c) { return mul(c.tangent(0), slope_at(c.input(0))); });
}

/// log(1 + exp(beta x)) / beta, and exactly x where beta x > threshold (as in PyTorch).
template <Floating T>
Tensor<T> softplus(const Tensor<T>& x, std::type_identity_t<T> beta = T(1), std::type_identity_t<T> threshold = T(20)) {
  check(beta != T(0) && std::isfinite(beta), "softplus", "beta must be finite and non-zero, got ", beta,
        " (input of shape ", x.shape(), ")");
  auto out = backend::softplus(x, T(beta), T(threshold));
  return record("softplus", std::move(out), {x}, [beta, threshold](const Tensor<T>& g, BackwardContext<T>& c) {
    c.set(0, softplus_backward(g, c.input(0), T(beta), T(threshold)));
  }, [beta, threshold](const TangentContext<T>& c) { return softplus_backward(c.tangent(0), c.input(0), T(beta), T(threshold)); });
}

/// x Φ(x) with Φ the standard normal CDF; GeluApproximate::tanh uses
/// 0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³))), as PyTorch's approximate="tanh".
template <Floating T>
Tensor<T> gelu(const Tensor<T>& x, GeluApproximate approximate = GeluApproximate::none) {
  auto out = backend::gelu(x, approximate == GeluApproximate::tanh);
  return record("gelu", std::move(out), {x}, [approximate](const Tensor<T>& g, BackwardContext<T>& c) {
    c.set(0, gelu_backward(g, c.input(0), approximate));
  }, [approximate](const TangentContext<T>& c) { return gelu_backward(c.tangent(0), c.input(0), approximate); });
}

template <Floating T>
Tensor<T> gelu_backward(const Tensor<T>& g, const Tensor<T>& x, GeluApproximate approximate) {
  detail::check_same_shape(g, x, "gelu_backward");
  auto out = backend::gelu_backward(g, x, approximate == GeluApproximate::tanh);
  // v * gelu''(x), element-wise: the x-derivative, for both the backward and the tangent rule.
  auto second = [approximate](const Tensor<T>& v, const Tensor<T>& x) {
    const auto x2 = square(x);
    if (approximate == GeluApproximate::tanh) {
      // With w = beta (1 + 3 kappa x²) and t = tanh(beta (x + kappa x³)):
      // gelu''(x) = (1 - t²) (w + 3 beta kappa x² - t x w²).
      const T beta = T(backend::kGeluTanhBeta), kappa = T(backend::kGeluTanhKappa);
      const auto t = tanh(mul(add(x, mul(mul(x2, x), kappa)), beta));
      const auto w = mul(add(mul(x2, T(3) * kappa), T(1)), beta);
      const auto inner = sub(add(w, mul(x2, T(3) * beta * kappa)), mul(mul(t, x), square(w)));
      return tanh_backward(mul(v, inner), t);
    }
    // gelu''(x) = φ(x) (2 - x²) with φ(x) = exp(-x²/2) / sqrt(2π).
    const auto pdf = mul(exp(mul(x2, T(-0.5))), T(detail::kInvSqrt2Pi));
    return mul(mul(v, pdf), sub(T(2), x2));
  };
  return record("gelu_backward", std::move(out), {g, x}, [approximate, second](const Tensor<T>& u, BackwardContext<T>& c) {
    const auto &g = c.input(0), &x = c.input(1);
    if (c.wants(0)) c.set(0, gelu_backward(u, x, approximate));
    if (c.wants(1)) c.set(1, second(mul(u, g), x));
  }, [approximate, second](const TangentContext<T>& c) {
    const auto &g = c.input(0), &x = c.input(1);
    const Tensor<T> dg = c.has_tangent(0) ? gelu_backward(c.tangent(0), x, approximate) : Tensor<T>();
    const Tensor<T> dx = c.has_tangent(1) ? second(mul(c.tangent(1), g), x) : Tensor<T>();
    return detail::add_terms(dg, dx, c.output_shape());
  });
}

/// x limited to [min, max]; either bound may be absent. The gradient passes where
/// min <= x <= max (bounds included, as in PyTorch). NaN stays NaN.
template <Floating T>
Tensor<T> clamp(const Tensor<T>& x, std::optional<std::type_identity_t<T>> min, std::optional<std::type_identity_t<T>> max) {
  check(min || max, "clamp", "at least one of min and max must be given (input of shape ", x.shape(), ")");
  check(!(min && std::isnan(*min)) && !(max && std::isnan(*max)), "clamp", "a bound is NaN (input of shape ", x.shape(), ")");
  check(!(min && max) || *min <= *max, "clamp", "min ", min.value_or(0), " is greater than max ", max.value_or(0),
        " (input of shape ", x.shape(), ")");
  const T lo = min.value_or(-std::numeric_limits<T>::infinity());
  const T hi = max.value_or(std::numeric_limits<T>::infinity());
  auto out = backend::clamp(x, lo, hi);
  return record("clamp", std::move(out), {x}, [lo, hi](const Tensor<T>& g, BackwardContext<T>& c) {
    c.set(0, mul(g, backend::clamp_grad(c.input(0), lo, hi)));
  }, [lo, hi](const TangentContext<T>& c) { return mul(c.tangent(0), backend::clamp_grad(c.input(0), lo, hi)); });
}

}  // namespace metagrad
