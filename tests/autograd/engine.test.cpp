// SPDX-License-Identifier: MIT
#include "metagrad/autograd/engine.hpp"
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

TEST_SUITE("autograd.engine") {
  TEST_CASE("autograd.grad: product rule and accumulation over shared inputs") {
    auto x = tensor<double>({1.0, 2.0, 3.0}).requires_grad_();
    auto y = sum(x * x * x + x);  // d/dx = 3x^2 + 1
    auto g = grad(y, x);
    CHECK(allclose(g, tensor<double>({4.0, 13.0, 28.0})));
  }

  TEST_CASE("autograd.grad: second and third order through create_graph") {
    auto x = tensor<double>({0.5, -1.5}).requires_grad_();
    auto y = sum(x * x * x * x);  // 4x^3, 12x^2, 24x
    GradOptions<double> keep{.create_graph = true};
    auto g1 = grad(y, x, keep);
    auto g2 = grad(sum(g1), x, keep);
    auto g3 = grad(sum(g2), x);
    CHECK(allclose(g1, tensor<double>({0.5, -13.5})));
    CHECK(allclose(g2, tensor<double>({3.0, 27.0})));
    CHECK(allclose(g3, tensor<double>({12.0, -36.0})));
  }

  TEST_CASE("autograd.grad: broadcasting gradients are summed back to the input shape") {
    auto a = ones<double>(Shape{3, 4}).requires_grad_();
    auto b = ones<double>(Shape{4}).requires_grad_();
    auto gs = grad(sum(a * b), std::vector{a, b});
    CHECK(allclose(gs[1], full<double>(Shape{4}, 3.0)));
  }

  TEST_CASE("autograd.grad: a freed graph walked twice is a clear error") {
    auto x = tensor<double>({1.0, 2.0}).requires_grad_();
    auto y = sum(x * x);
    (void)grad(y, x);
    METAGRAD_CHECK_ERROR(grad(y, x), "grad", "already freed", "'sum'", "retain_graph");
  }

  TEST_CASE("autograd.grad: unused inputs and outputs without grad are errors that name them") {
    auto x = tensor<double>({1.0}).requires_grad_();
    auto z = tensor<double>({1.0, 2.0}).requires_grad_();
    METAGRAD_CHECK_ERROR(grad(sum(x * x), z), "grad", "input 0", "[2]", "allow_unused");
    auto c = tensor<double>({1.0});
    METAGRAD_CHECK_ERROR(grad(c, x), "grad", "output 0", "does not require grad");
  }

  TEST_CASE("autograd.backward: accumulates into leaves") {
    auto w = tensor<double>({2.0, 3.0}).requires_grad_();
    backward(sum(w * w));
    backward(sum(w * w));
    CHECK(allclose(w.grad(), tensor<double>({8.0, 12.0})));
  }

  TEST_CASE("autograd.backward: a leaf reached only through a gradient-free path keeps no gradient") {
    // ∂Σrelu(x)/∂x = 1[x > 0] depends on x only through the mask, which has no gradient: backward of
    // a penalty on it reaches x yet gives x nothing, and must still fill w (a ReLU net's RRR case).
    auto x = tensor<double>({-1.0, 0.5, 2.0}).requires_grad_();
    auto w = tensor<double>({1.0, 2.0, 3.0}).requires_grad_();
    const auto gx = grad(sum(relu(x)), x, {.create_graph = true});
    backward(sum(gx * w * w));
    CHECK(allclose(w.grad(), tensor<double>({0.0, 4.0, 6.0})));
    CHECK(!x.grad().defined());
  }

  TEST_CASE("autograd.gradcheck: catches a wrong derivative") {
    // A deliberately wrong rule: forward x^2, backward claims 3x.
    auto wrong = [](const std::vector<Tensor<double>>& a) {
      auto out = cpu::map_unary(a[0], [](const auto& v) { return v * v; });
      return record(
          "wrong_square", out, {a[0]},
          [](const Tensor<double>& g, BackwardContext<double>& c) { c.set(0, g * c.input(0) * 3.0); },
          [](const TangentContext<double>& c) { return c.tangent(0) * c.input(0) * 2.0; });
    };
    CHECK_FALSE(gradcheck(wrong, {tensor<double>({0.3, -0.7})}).ok);
    auto right = [](const std::vector<Tensor<double>>& a) { return a[0] * a[0]; };
    CHECK(gradcheck(right, {tensor<double>({0.3, -0.7})}, {.order = 3}).ok);
  }
}
