// SPDX-License-Identifier: MIT
// Element-wise unary ops. Each backward rule is written with ops (often reusing the output), so
// it differentiates again; masks such as relu's step are constants of the backward pass.
#pragma once
#include <cmath>

#include "metagrad/ops/arithmetic.hpp"

namespace metagrad {

namespace detail {
/// 1 where x > 0, else 0: the (constant) derivative of relu.
template <Floating T>
Tensor<T> positive_mask(const Tensor<T>& x) {
  return cpu::map_unary(x, [](const auto& a) { return (a > T(0)).template cast<T>(); });
}
}  // namespace detail

template <Floating T>
Tensor<T> exp(const Tensor<T>& x) {
  return record("exp", cpu::map_unary(x, [](const auto& a) { return a.exp(); }), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, mul(g, c.output())); });
}

template <Floating T>
Tensor<T> log(const Tensor<T>& x) {
  return record("log", cpu::map_unary(x, [](const auto& a) { return a.log(); }), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, div(g, c.input(0))); });
}

template <Floating T>
Tensor<T> square(const Tensor<T>& x) {
  return record("square", cpu::map_unary(x, [](const auto& a) { return a.square(); }), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, mul(mul(g, c.input(0)), T(2))); });
}

template <Floating T>
Tensor<T> sqrt(const Tensor<T>& x) {
  return record("sqrt", cpu::map_unary(x, [](const auto& a) { return a.sqrt(); }), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, div(mul(g, T(0.5)), c.output())); });
}

template <Floating T>
Tensor<T> tanh(const Tensor<T>& x) {
  return record("tanh", cpu::map_unary(x, [](const auto& a) { return a.tanh(); }), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) {
                  const auto& y = c.output();
                  c.set(0, mul(g, sub(T(1), mul(y, y))));
                });
}

template <Floating T>
Tensor<T> sigmoid(const Tensor<T>& x) {
  return record("sigmoid", cpu::map_unary(x, [](const auto& a) { return a.logistic(); }), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) {
                  const auto& y = c.output();
                  c.set(0, mul(g, mul(y, sub(T(1), y))));
                });
}

template <Floating T>
Tensor<T> relu(const Tensor<T>& x) {
  return record("relu", cpu::map_unary(x, [](const auto& a) { return a.max(T(0)); }), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, mul(g, detail::positive_mask(c.input(0)))); });
}

}  // namespace metagrad
