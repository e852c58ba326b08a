// SPDX-License-Identifier: MIT
// The control for tensor_float_plus_double.cpp: the same program with matching element types
// must compile, so the failing case fails for its types and not for a broken include or flag.
#include "metagrad/core/creation.hpp"
#include "metagrad/ops/arithmetic.hpp"

int main() {
  const auto a = metagrad::ones<float>(metagrad::Shape{2});
  const auto b = metagrad::ones<float>(metagrad::Shape{2});
  const auto c = a + b;
  return static_cast<int>(c.numel());
}
