// SPDX-License-Identifier: MIT
// What the engine records and what it refuses: grad-mode guards, requires_grad propagation,
// detach, unused inputs, walking a graph twice, and tensors modified in place after use.
#include <stdexcept>
#include <thread>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using D = Tensor<double>;

TEST_SUITE("autograd.grad_mode") {
  TEST_CASE("autograd.grad_mode: NoGradGuard records nothing") {
    auto x = tensor<double>({1.0, 2.0}).requires_grad_();
    {
      NoGradGuard off;
      CHECK_FALSE(GradMode::enabled());
      const auto y = exp(x * x) + x;
      CHECK_FALSE(y.requires_grad());
      CHECK_FALSE(y.grad_fn());
      CHECK(y.is_leaf());
    }
    CHECK(GradMode::enabled());
    const auto z = x * x;
    CHECK(z.requires_grad());
    REQUIRE(z.grad_fn());
    CHECK(std::string(z.grad_fn()->name()) == "mul");
  }

  TEST_CASE("autograd.grad_mode: EnableGradGuard inside NoGradGuard records, and both restore") {
    auto x = tensor<double>({3.0}).requires_grad_();
    NoGradGuard off;
    D y;
    {
      EnableGradGuard on;
      CHECK(GradMode::enabled());
      y = x * x;
    }
    CHECK_FALSE(GradMode::enabled());
    CHECK(y.requires_grad());
    CHECK_FALSE((x * x).requires_grad());
    // grad() itself works under no-grad: the walk does not need recording.
    CHECK(allclose(grad(y, x), tensor<double>({6.0})));
    CHECK_FALSE(GradMode::enabled());
  }

  TEST_CASE("autograd.grad_mode: guards restore the previous state when an exception unwinds") {
    try {
      NoGradGuard off;
      throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    CHECK(GradMode::enabled());
    {
      NoGradGuard off;
      try {
        EnableGradGuard on;
        throw std::runtime_error("boom");
      } catch (const std::runtime_error&) {
      }
      CHECK_FALSE(GradMode::enabled());
    }
    CHECK(GradMode::enabled());
  }

  TEST_CASE("autograd.grad_mode: the mode is per thread") {
    NoGradGuard off;
    bool other_thread_enabled = false;
    std::thread([&] { other_thread_enabled = GradMode::enabled(); }).join();
    CHECK(other_thread_enabled);
    CHECK_FALSE(GradMode::enabled());
  }

  TEST_CASE("autograd.grad_mode: create_graph records the backward pass, and only then") {
    auto x = tensor<double>({0.5, -1.0}).requires_grad_();
    const auto y = sum(x * x * x);
    const auto g1 = grad(y, x, {.retain_graph = true});
    CHECK_FALSE(g1.requires_grad());
    const auto g2 = grad(y, x, {.create_graph = true});
    CHECK(g2.requires_grad());
    CHECK(GradMode::enabled());  // the engine's own guard is gone again
  }

  TEST_CASE("autograd.requires_grad: propagates from any input and makes non-leaves") {
    auto a = tensor<double>({1.0, 2.0}).requires_grad_();
    const auto b = tensor<double>({3.0, 4.0});
    CHECK(a.is_leaf());
    CHECK((a * b).requires_grad());
    CHECK((b * a).requires_grad());
    CHECK_FALSE((b * b).requires_grad());
    CHECK_FALSE((b * b).grad_fn());
    const auto c = tanh(a) + b;
    CHECK_FALSE(c.is_leaf());
    // A non-leaf cannot stop requiring grad; detach is the way.
    auto c2 = c;
    METAGRAD_CHECK_ERROR(c2.requires_grad_(false), "requires_grad_", "non-leaf", "[2]", "detach");
    // A leaf can switch it off again.
    a.requires_grad_(false);
    CHECK_FALSE((a * b).requires_grad());
  }

  TEST_CASE("autograd.detach: shares storage but cuts history") {
    auto x = tensor<double>({2.0, -3.0}).requires_grad_();
    const auto y = x * x;
    const auto d = y.detach();
    CHECK(d.data() == y.data());
    CHECK_FALSE(d.requires_grad());
    CHECK(d.is_leaf());
    CHECK(y.grad_fn());  // the original keeps its history
    // Gradient flows through x * d only via x: d is a constant (x²), so d/dx sum(x · x²) along x is x².
    CHECK(allclose(grad(sum(x * d), x), tensor<double>({4.0, 9.0})));
    CHECK(allclose(grad(sum(x * y), x), tensor<double>({12.0, 27.0})));
  }

  TEST_CASE("autograd.grad: allow_unused returns an undefined gradient") {
    auto x = tensor<double>({1.0}).requires_grad_();
    auto unused = tensor<double>({5.0, 6.0}).requires_grad_();
    const auto gs = grad(sum(x * x), std::vector{x, unused}, {.allow_unused = true});
    REQUIRE(gs.size() == 2);
    CHECK(allclose(gs[0], tensor<double>({2.0})));
    CHECK_FALSE(gs[1].defined());
    METAGRAD_CHECK_ERROR(grad(sum(x * x), std::vector{x, unused}), "grad", "input 1", "[2]", "allow_unused");
  }

  TEST_CASE("autograd.grad: retain_graph allows a second walk with the same result") {
    auto x = tensor<double>({0.5, 1.5}).requires_grad_();
    const auto y = sum(exp(x) * x);
    const auto g1 = grad(y, x, {.retain_graph = true});
    const auto g2 = grad(y, x, {.retain_graph = true});
    CHECK(allclose(g1, g2, 0, 0));
    const auto g3 = grad(y, x);  // the last walk frees the graph
    CHECK(allclose(g1, g3, 0, 0));
    METAGRAD_CHECK_ERROR(grad(y, x), "grad", "already freed", "retain_graph");
  }

  TEST_CASE("autograd.grad: a tensor modified in place after an op used it is caught") {
    auto x = tensor<double>({1.0, 2.0}).requires_grad_();
    auto w = tensor<double>({3.0, 4.0});
    const auto y = sum(x * w);  // mul saved w
    const auto v0 = w.version();
    w.mutable_data()[0] = 10.0;
    CHECK(w.version() == v0 + 1);
    METAGRAD_CHECK_ERROR(grad(y, x), "grad", "modified in place", "'mul'", "[2]");
  }

  TEST_CASE("autograd.grad: reading, or writing an unrelated tensor, is not an in-place change") {
    auto x = tensor<double>({1.0, 2.0}).requires_grad_();
    auto w = tensor<double>({3.0, 4.0});
    auto other = tensor<double>({0.0});
    const auto y = sum(x * w);
    (void)w.data();
    (void)w.to_vector();
    other.mutable_data()[0] = 1.0;
    CHECK(allclose(grad(y, x), w));
  }

  TEST_CASE("autograd.grad: an in-place change through a view (shared storage) is caught too") {
    auto x = tensor<double>({1.0, 2.0}).requires_grad_();
    auto w = tensor<double>({3.0, 4.0});
    const auto y = sum(x * w);
    auto alias = w.detach();  // same storage
    alias.mutable_data()[1] = 0.0;
    METAGRAD_CHECK_ERROR(grad(y, x), "grad", "modified in place");
  }
}
