// SPDX-License-Identifier: MIT
#include <cmath>
#include <sstream>

#include "metagrad/core/creation.hpp"
#include "metagrad/core/print.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/view.hpp"
#include "test_util.hpp"

using namespace metagrad;

namespace {
template <class T>
std::string printed(const Tensor<T>& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}
}  // namespace

TEST_SUITE("core.print") {
  TEST_CASE("core.print: header and aligned fixed-point columns") {
    CHECK(printed(tensor<float>({{1.0f, 2.5f, -3.0f}, {4.0f, 5.0f, 6.125f}})) ==
          "tensor(shape=[2, 3], dtype=float32, requires_grad=false)\n"
          "[[ 1.0000,  2.5000, -3.0000],\n"
          " [ 4.0000,  5.0000,  6.1250]]");
  }

  TEST_CASE("core.print: integral floats, int64, scalars") {
    CHECK(printed(tensor<double>({1.0, -20.0, 300.0})) ==
          "tensor(shape=[3], dtype=float64, requires_grad=false)\n[  1., -20., 300.]");
    CHECK(printed(arange<std::int64_t>(4)) == "tensor(shape=[4], dtype=int64)\n[0, 1, 2, 3]");
    CHECK(printed(scalar_tensor<double>(0.5)) == "tensor(shape=[], dtype=float64, requires_grad=false)\n0.5000");
  }

  TEST_CASE("core.print: rank 3 separates blocks by a blank line") {
    CHECK(printed(reshape(arange<double>(8.0), {2, 2, 2})) ==
          "tensor(shape=[2, 2, 2], dtype=float64, requires_grad=false)\n"
          "[[[0., 1.],\n"
          "  [2., 3.]],\n"
          "\n"
          " [[4., 5.],\n"
          "  [6., 7.]]]");
  }

  TEST_CASE("core.print: scientific notation for wide ranges; nan and inf") {
    CHECK(printed(tensor<double>({1e-6, 1.0, 250.5})) ==
          "tensor(shape=[3], dtype=float64, requires_grad=false)\n[1.0000e-06, 1.0000e+00, 2.5050e+02]");
    CHECK(printed(tensor<double>({0.5, NAN, -INFINITY})) ==
          "tensor(shape=[3], dtype=float64, requires_grad=false)\n[0.5000,    nan,   -inf]");
  }

  TEST_CASE("core.print: requires_grad and grad_fn in the header") {
    auto x = tensor<double>({1.0, 2.0}).requires_grad_();
    CHECK(printed(x) == "tensor(shape=[2], dtype=float64, requires_grad=true)\n[1., 2.]");
    CHECK(describe(x * 0.5) == "tensor(shape=[2], dtype=float64, requires_grad=true, grad_fn=mul_scalar)");
  }

  TEST_CASE("core.print: large tensors are summarised along every dim") {
    CHECK(printed(arange<double>(2000.0)) ==
          "tensor(shape=[2000], dtype=float64, requires_grad=false)\n"
          "[   0.,    1.,    2., ..., 1997., 1998., 1999.]");
    const std::string m = printed(reshape(arange<std::int64_t>(1200), {30, 40}));
    CHECK(m ==
          "tensor(shape=[30, 40], dtype=int64)\n"
          "[[   0,    1,    2, ...,   37,   38,   39],\n"
          " [  40,   41,   42, ...,   77,   78,   79],\n"
          " [  80,   81,   82, ...,  117,  118,  119],\n"
          " ...,\n"
          " [1080, 1081, 1082, ..., 1117, 1118, 1119],\n"
          " [1120, 1121, 1122, ..., 1157, 1158, 1159],\n"
          " [1160, 1161, 1162, ..., 1197, 1198, 1199]]");
    // At the threshold nothing is summarised.
    CHECK(to_string(arange<std::int64_t>(1000)).find("...") == std::string::npos);
  }

  TEST_CASE("core.print: options for precision, threshold and edge items") {
    const auto t = tensor<double>({0.123456, 0.5, 0.75, 1.0, 2.0});
    CHECK(to_string(t, {.precision = 2}) == "tensor(shape=[5], dtype=float64, requires_grad=false)\n[0.12, 0.50, 0.75, 1.00, 2.00]");
    CHECK(to_string(t, {.precision = 1, .threshold = 4, .edgeitems = 1}) ==
          "tensor(shape=[5], dtype=float64, requires_grad=false)\n[0.1, ..., 2.0]");
  }

  TEST_CASE("core.print: empty and undefined tensors") {
    CHECK(printed(zeros<float>(Shape{0, 3})) == "tensor(shape=[0, 3], dtype=float32, requires_grad=false)\n[]");
    CHECK(printed(Tensor<double>()) == "tensor(undefined)");
  }
}
