// SPDX-License-Identifier: MIT
// Must NOT compile: adding tensors of different element types has no implicit promotion, so a
// float model fed double data is a compile error rather than a silent conversion.
// tensor_float_plus_float.cpp is the same program with matching types, and must compile.
#include "metagrad/core/creation.hpp"
#include "metagrad/ops/arithmetic.hpp"

int main() {
  const auto a = metagrad::ones<float>(metagrad::Shape{2});
  const auto b = metagrad::ones<double>(metagrad::Shape{2});
  const auto c = a + b;
  return static_cast<int>(c.numel());
}
