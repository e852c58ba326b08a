// SPDX-License-Identifier: MIT
// Parameter initialisers (PyTorch's torch.nn.init, same formulas): each fills a tensor in place
// and returns it, from an explicit Generator or, without one, from default_generator() (seeded by
// manual_seed). Values are drawn in double and rounded once to T, so float and double models built
// from one seed agree to float precision. A tensor is a handle, so the argument may be any handle
// to the parameter: the member itself (init::zeros_(model.fc.bias)) or the copy a loop over
// named_parameters() gives; the module's storage is written either way.
#pragma once
#include <cmath>
#include <cstdint>
#include <utility>

#include "metagrad/core/random.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::nn::init {

enum class FanMode { fan_in, fan_out };
enum class Nonlinearity { linear, sigmoid, tanh, relu, leaky_relu };

/// The recommended gain for a nonlinearity (`param` is leaky_relu's negative slope).
inline double calculate_gain(Nonlinearity nl, double param = 0.01) {
  switch (nl) {
    case Nonlinearity::tanh: return 5.0 / 3.0;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu: return std::sqrt(2.0 / (1.0 + param * param));
    case Nonlinearity::linear:
    case Nonlinearity::sigmoid: break;
  }
  return 1.0;
}

/// (fan_in, fan_out) of a weight shaped [out, in, k...]: in·∏k and out·∏k.
inline std::pair<std::int64_t, std::int64_t> fan_in_and_fan_out(const Shape& shape) {
  check(shape.rank() >= 2, "init", "fan in and fan out need a tensor of rank >= 2, got shape ", shape);
  std::int64_t receptive = 1;
  for (int i = 2; i < shape.rank(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

namespace detail {
template <Floating T, class Draw>
Tensor<T> fill_with(Tensor<T> t, Draw&& draw) {
  check(t.defined(), "init", "cannot fill an undefined tensor (a layer built without bias has no bias)");
  T* p = t.mutable_data("init");
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(draw());
  return t;
}
inline double fan(const Shape& shape, FanMode mode) {
  const auto [in, out] = fan_in_and_fan_out(shape);
  const auto f = mode == FanMode::fan_in ? in : out;
  check(f > 0, "init", "zero fan for a tensor of shape ", shape);
  return static_cast<double>(f);
}
inline double fan_sum(const Shape& shape) {
  const auto [in, out] = fan_in_and_fan_out(shape);
  check(in + out > 0, "init", "zero fan for a tensor of shape ", shape);
  return static_cast<double>(in + out);
}
}  // namespace detail

// Each random initialiser comes twice: with an explicit Generator (a stream the caller owns) and
// without one (default_generator()). Generator's constructor is explicit, so normal_(w, 0, 0.02)
// cannot be read as a Generator argument.

/// Uniform in [low, high).
template <Floating T>
Tensor<T> uniform_(Tensor<T> t, Generator& gen, double low = 0.0, double high = 1.0) {
  check(low <= high, "uniform_", "low ", low, " is above high ", high);
  return detail::fill_with(t, [&] { return low + (high - low) * gen.uniform(); });
}
template <Floating T>
Tensor<T> uniform_(Tensor<T> t, double low = 0.0, double high = 1.0) {
  return uniform_(t, default_generator(), low, high);
}
template <Floating T>
Tensor<T> normal_(Tensor<T> t, Generator& gen, double mean = 0.0, double stddev = 1.0) {
  check(stddev >= 0, "normal_", "stddev must be >= 0, got ", stddev);
  return detail::fill_with(t, [&] { return mean + stddev * gen.normal(); });
}
template <Floating T>
Tensor<T> normal_(Tensor<T> t, double mean = 0.0, double stddev = 1.0) {
  return normal_(t, default_generator(), mean, stddev);
}
/// Normal(mean, stddev) redrawn until it lies in [a, b] (absolute bounds, as in PyTorch).
template <Floating T>
Tensor<T> trunc_normal_(Tensor<T> t, Generator& gen, double mean = 0.0, double stddev = 1.0, double a = -2.0,
                        double b = 2.0) {
  check(stddev > 0 && a < b, "trunc_normal_", "needs stddev > 0 and a < b, got stddev ", stddev, " and [", a, ", ", b,
        "]");
  // Rejection would practically never end for an interval far in a tail.
  check(std::erfc((a - mean) / (stddev * std::sqrt(2.0))) - std::erfc((b - mean) / (stddev * std::sqrt(2.0))) > 1e-6,
        "trunc_normal_", "[", a, ", ", b, "] has almost no mass under N(", mean, ", ", stddev, "^2)");
  return detail::fill_with(t, [&] {
    double v = 0;
    do v = mean + stddev * gen.normal(); while (v < a || v > b);
    return v;
  });
}
template <Floating T>
Tensor<T> trunc_normal_(Tensor<T> t, double mean = 0.0, double stddev = 1.0, double a = -2.0, double b = 2.0) {
  return trunc_normal_(t, default_generator(), mean, stddev, a, b);
}
template <Floating T>
Tensor<T> constant_(Tensor<T> t, double value) {
  return detail::fill_with(t, [value] { return value; });
}
template <Floating T>
Tensor<T> zeros_(Tensor<T> t) { return constant_(t, 0.0); }
template <Floating T>
Tensor<T> ones_(Tensor<T> t) { return constant_(t, 1.0); }

/// He et al.: uniform in ±gain·√(3 / fan); `a` is the leaky_relu slope the gain is computed for.
/// kaiming_uniform_(w, gen, √5) is PyTorch's default for Linear and Conv weights (bound 1/√fan_in).
template <Floating T>
Tensor<T> kaiming_uniform_(Tensor<T> t, Generator& gen, double a = 0.0, FanMode mode = FanMode::fan_in,
                           Nonlinearity nl = Nonlinearity::leaky_relu) {
  const double bound = calculate_gain(nl, a) * std::sqrt(3.0 / detail::fan(t.shape(), mode));
  return uniform_(t, gen, -bound, bound);
}
template <Floating T>
Tensor<T> kaiming_uniform_(Tensor<T> t, double a = 0.0, FanMode mode = FanMode::fan_in,
                           Nonlinearity nl = Nonlinearity::leaky_relu) {
  return kaiming_uniform_(t, default_generator(), a, mode, nl);
}
/// He et al.: normal with standard deviation gain / √fan.
template <Floating T>
Tensor<T> kaiming_normal_(Tensor<T> t, Generator& gen, double a = 0.0, FanMode mode = FanMode::fan_in,
                          Nonlinearity nl = Nonlinearity::leaky_relu) {
  return normal_(t, gen, 0.0, calculate_gain(nl, a) / std::sqrt(detail::fan(t.shape(), mode)));
}
template <Floating T>
Tensor<T> kaiming_normal_(Tensor<T> t, double a = 0.0, FanMode mode = FanMode::fan_in,
                          Nonlinearity nl = Nonlinearity::leaky_relu) {
  return kaiming_normal_(t, default_generator(), a, mode, nl);
}
/// Glorot & Bengio: uniform in ±gain·√(6 / (fan_in + fan_out)).
template <Floating T>
Tensor<T> xavier_uniform_(Tensor<T> t, Generator& gen, double gain = 1.0) {
  const double bound = gain * std::sqrt(6.0 / detail::fan_sum(t.shape()));
  return uniform_(t, gen, -bound, bound);
}
template <Floating T>
Tensor<T> xavier_uniform_(Tensor<T> t, double gain = 1.0) {
  return xavier_uniform_(t, default_generator(), gain);
}
/// Glorot & Bengio: normal with standard deviation gain·√(2 / (fan_in + fan_out)).
template <Floating T>
Tensor<T> xavier_normal_(Tensor<T> t, Generator& gen, double gain = 1.0) {
  return normal_(t, gen, 0.0, gain * std::sqrt(2.0 / detail::fan_sum(t.shape())));
}
template <Floating T>
Tensor<T> xavier_normal_(Tensor<T> t, double gain = 1.0) {
  return xavier_normal_(t, default_generator(), gain);
}

}  // namespace metagrad::nn::init
