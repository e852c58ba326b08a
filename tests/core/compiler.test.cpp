// SPDX-License-Identifier: MIT
// Guards the -fno-tree-slp-vectorize workaround that CMakeLists.txt puts on metagrad::metagrad for
// GCC < 13: with AVX-512 enabled, GCC 12.2 builds `Options{}` below with padding (1, 0) instead of
// (0, 0), which made every default-constructed Conv2d pad its input. If this test fails, the
// compiler in use has the bug and the flag did not reach it.
#include <doctest/doctest.h>

#include <cstdint>

#include "metagrad/ops/conv.hpp"

// External linkage on purpose: in an anonymous namespace GCC specialises the calls away.
namespace compiler_test {
struct Options {
  metagrad::Size2d stride = 1;
  metagrad::Size2d padding = 0;
  metagrad::Size2d dilation = 1;
  bool bias = true;
};
struct Params {
  metagrad::Size2d stride, padding, dilation;
};
Params seen{0, 0, 0};  // NOLINT: written by record()
[[gnu::noinline]] void record(const Params& p) { seen = p; }
[[gnu::noinline]] void receive(metagrad::Size2d stride, metagrad::Size2d padding, metagrad::Size2d dilation) {
  const Params p{stride, padding, dilation};
  record(p);
}
[[gnu::noinline]] void forward(Options o) { receive(o.stride, o.padding, o.dilation); }
}  // namespace compiler_test

TEST_CASE("compiler: small option structs of 64-bit constants arrive intact") {
  using namespace compiler_test;
  forward(Options{});
  CHECK(seen.stride.h == 1);
  CHECK(seen.stride.w == 1);
  CHECK(seen.padding.h == 0);
  CHECK(seen.padding.w == 0);
  CHECK(seen.dilation.h == 1);
  CHECK(seen.dilation.w == 1);
}
