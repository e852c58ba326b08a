// SPDX-License-Identifier: MIT
// Element types. Floating tensors are differentiable; int64 tensors carry indices and labels.
#pragma once
#include <concepts>
#include <cstdint>

namespace metagrad {

template <class T>
concept Floating = std::same_as<T, float> || std::same_as<T, double>;

template <class T>
concept Element = Floating<T> || std::same_as<T, std::int64_t>;

template <Element T>
constexpr const char* dtype_name() {
  if constexpr (std::same_as<T, float>) return "float32";
  else if constexpr (std::same_as<T, double>) return "float64";
  else return "int64";
}

}  // namespace metagrad
