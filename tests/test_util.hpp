// SPDX-License-Identifier: MIT
// Helpers shared by the tests: exact and approximate tensor comparison, exception-message checks.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>

#include <doctest/doctest.h>

#include "metagrad/core/tensor.hpp"

namespace metagrad::testing {

/// |a - b| <= atol + rtol * |b| elementwise, and equal shapes.
template <Element T>
bool allclose(const Tensor<T>& a, const Tensor<T>& b, double atol = 1e-6, double rtol = 1e-5) {
  if (!(a.shape() == b.shape())) return false;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double x = static_cast<double>(a.data()[i]), y = static_cast<double>(b.data()[i]);
    if (!(std::abs(x - y) <= atol + rtol * std::abs(y))) return false;
  }
  return true;
}

/// Element-exact equality and equal shapes (for kernels that move values and never round).
template <Element T>
bool same(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() && std::equal(a.data(), a.data() + a.numel(), b.data());
}

/// Runs fn, requires it to throw metagrad::Error, and returns the message.
template <class Fn>
std::string error_message(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no exception>";
}

}  // namespace metagrad::testing

/// CHECKs that `expr` throws a metagrad::Error whose message contains every given fragment.
#define METAGRAD_CHECK_ERROR(expr, ...)                                                      \
  do {                                                                                       \
    const std::string metagrad_msg_ = ::metagrad::testing::error_message([&] { (void)(expr); }); \
    for (const char* fragment_ : {__VA_ARGS__})                                              \
      CHECK_MESSAGE(metagrad_msg_.find(fragment_) != std::string::npos,                     \
                    ("message: " + metagrad_msg_ + " | lacks: " + std::string(fragment_)));  \
  } while (0)
