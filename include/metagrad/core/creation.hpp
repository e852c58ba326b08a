// SPDX-License-Identifier: MIT
// Creating tensors: constants, ranges, random draws from a seeded Generator, and conversions from
// and to std::vector, initializer lists and Eigen matrices. Results are leaves without grad.
#pragma once
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <vector>

#include <Eigen/Core>

#include "metagrad/core/random.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad {

template <Element T>
Tensor<T> full(const Shape& shape, T value) {
  auto t = Tensor<T>::empty(shape);
  std::fill_n(t.fresh_data(), t.numel(), value);
  return t;
}
template <Element T>
Tensor<T> zeros(const Shape& shape) { return full<T>(shape, T(0)); }
template <Element T>
Tensor<T> ones(const Shape& shape) { return full<T>(shape, T(1)); }
template <Element T>
Tensor<T> zeros_like(const Tensor<T>& t) { return zeros<T>(t.shape()); }
template <Element T>
Tensor<T> ones_like(const Tensor<T>& t) { return ones<T>(t.shape()); }
template <Element T>
Tensor<T> full_like(const Tensor<T>& t, T value) { return full<T>(t.shape(), value); }
/// A one-element tensor of rank 0.
template <Element T>
Tensor<T> scalar_tensor(T value) { return full<T>(Shape{}, value); }

/// Values from `values` laid out in `shape` (row-major); sizes must agree.
template <Element T>
Tensor<T> from_vector(const std::vector<T>& values, const Shape& shape) {
  check(static_cast<std::int64_t>(values.size()) == shape.numel(), "from_vector", values.size(),
        " values cannot fill shape ", shape);
  auto t = Tensor<T>::empty(shape);
  std::copy(values.begin(), values.end(), t.fresh_data());
  return t;
}
template <Element T>
Tensor<T> from_vector(const std::vector<T>& values) {
  return from_vector<T>(values, Shape{static_cast<std::int64_t>(values.size())});
}
/// tensor<float>({1, 2, 3}) is a vector; tensor<float>({{1, 2}, {3, 4}}) a matrix.
template <Element T>
Tensor<T> tensor(std::initializer_list<T> values) { return from_vector<T>(std::vector<T>(values)); }
template <Element T>
Tensor<T> tensor(std::initializer_list<std::initializer_list<T>> rows) {
  const std::int64_t r = static_cast<std::int64_t>(rows.size());
  const std::int64_t c = r ? static_cast<std::int64_t>(rows.begin()->size()) : 0;
  std::vector<T> values;
  values.reserve(static_cast<std::size_t>(r * c));
  for (const auto& row : rows) {
    check(static_cast<std::int64_t>(row.size()) == c, "tensor", "ragged rows: ", row.size(), " vs ", c);
    values.insert(values.end(), row.begin(), row.end());
  }
  return from_vector<T>(values, Shape{r, c});
}

/// start, start+step, ... < end.
template <Element T>
Tensor<T> arange(T start, T end, T step = T(1)) {
  check(step != T(0), "arange", "step must be non-zero");
  const double count = std::ceil((static_cast<double>(end) - static_cast<double>(start)) / static_cast<double>(step));
  const std::int64_t n = std::max<std::int64_t>(0, static_cast<std::int64_t>(count));
  auto t = Tensor<T>::empty(Shape{n});
  T* p = t.fresh_data();
  for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<T>(i) * step);
  return t;
}
template <Element T>
Tensor<T> arange(T end) { return arange<T>(T(0), end, T(1)); }

/// `steps` evenly spaced values from start to end inclusive.
template <Floating T>
Tensor<T> linspace(T start, T end, std::int64_t steps) {
  check(steps >= 0, "linspace", "steps must be non-negative, got ", steps);
  auto t = Tensor<T>::empty(Shape{steps});
  T* p = t.fresh_data();
  for (std::int64_t i = 0; i < steps; ++i)
    p[i] = steps == 1 ? start : start + (end - start) * static_cast<T>(i) / static_cast<T>(steps - 1);
  return t;
}

template <Element T>
Tensor<T> eye(std::int64_t n, std::int64_t m = -1) {
  if (m < 0) m = n;
  auto t = zeros<T>(Shape{n, m});
  T* p = t.fresh_data();
  for (std::int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = T(1);
  return t;
}

/// Uniform in [low, high).
template <Floating T>
Tensor<T> rand(const Shape& shape, Generator& gen = default_generator(), T low = T(0), T high = T(1)) {
  auto t = Tensor<T>::empty(shape);
  T* p = t.fresh_data();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(low + (high - low) * gen.uniform());
  return t;
}
/// Normal with the given mean and standard deviation.
template <Floating T>
Tensor<T> randn(const Shape& shape, Generator& gen = default_generator(), T mean = T(0), T stddev = T(1)) {
  auto t = Tensor<T>::empty(shape);
  T* p = t.fresh_data();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(mean + stddev * gen.normal());
  return t;
}
/// 1 with probability p, else 0.
template <Floating T>
Tensor<T> bernoulli(const Shape& shape, double p, Generator& gen = default_generator()) {
  check(p >= 0 && p <= 1, "bernoulli", "probability ", p, " is outside [0, 1]");
  auto t = Tensor<T>::empty(shape);
  T* out = t.fresh_data();
  for (std::int64_t i = 0; i < t.numel(); ++i) out[i] = gen.uniform() < p ? T(1) : T(0);
  return t;
}
/// Integers uniform in [low, high).
inline Tensor<std::int64_t> randint(std::int64_t low, std::int64_t high, const Shape& shape,
                                    Generator& gen = default_generator()) {
  check(high > low, "randint", "empty range [", low, ", ", high, ")");
  auto t = Tensor<std::int64_t>::empty(shape);
  auto* p = t.fresh_data();
  // In unsigned arithmetic: high - low overflows int64 for ranges wider than 2^63.
  const auto base = static_cast<std::uint64_t>(low), range = static_cast<std::uint64_t>(high) - base;
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<std::int64_t>(base + gen.below(range));
  return t;
}

template <Element T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A copy of an Eigen matrix (any storage order) as a 2-D tensor.
template <class Derived>
auto from_eigen(const Eigen::MatrixBase<Derived>& m) {
  using T = typename Derived::Scalar;
  auto t = Tensor<T>::empty(Shape{m.rows(), m.cols()});
  Eigen::Map<RowMatrix<T>>(t.fresh_data(), m.rows(), m.cols()) = m;
  return t;
}
/// A copy of a 1-D or 2-D tensor as an Eigen matrix (a 1-D tensor becomes a column).
template <Element T>
RowMatrix<T> to_eigen(const Tensor<T>& t) {
  check(t.dim() == 1 || t.dim() == 2, "to_eigen", "needs a 1-D or 2-D tensor, got shape ", t.shape());
  const std::int64_t r = t.shape()[0], c = t.dim() == 2 ? t.shape()[1] : 1;
  return Eigen::Map<const RowMatrix<T>>(t.data(), r, c);
}

}  // namespace metagrad
