// SPDX-License-Identifier: MIT
// Graph lifetime: long chains walk and tear down without recursion, graphs leave no reference
// cycles, and a second-order training loop runs in flat memory served by the storage pool.
#include <pthread.h>

#include <functional>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using D = Tensor<double>;

namespace {

/// Runs fn on a thread with a small stack, so that a recursion proportional to the graph length
/// crashes here regardless of the process's stack limit. Returns false if the thread could not run.
bool run_with_stack(std::size_t bytes, const std::function<void()>& fn) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  pthread_attr_setstacksize(&attr, bytes);
  auto trampoline = [](void* arg) -> void* {
    (*static_cast<const std::function<void()>*>(arg))();
    return nullptr;
  };
  pthread_t thread;
  const bool started = pthread_create(&thread, &attr, trampoline, const_cast<std::function<void()>*>(&fn)) == 0;
  pthread_attr_destroy(&attr);
  if (started) pthread_join(thread, nullptr);
  return started;
}

// 1 MiB is about 5 bytes per op of a 200k chain: a destructor or walk that recursed once per op
// (at least ~40 bytes a level) would overflow it long before the end.
constexpr std::size_t kSmallStack = std::size_t{1} << 20;
constexpr int kChain = 200'000;

}  // namespace

TEST_SUITE("autograd.memory") {
  TEST_CASE("autograd.memory: a 200,000-op chain walks and tears down without deep recursion") {
    const auto baseline = memory_stats().live_buffers;
    double g_value = 0, gg_value = 0;
    bool done = false;
    REQUIRE(run_with_stack(kSmallStack, [&] {
      auto x = tensor<double>({0.75}).requires_grad_();
      {
        D y = x;
        for (int i = 0; i < kChain; ++i) y = i % 2 ? y * 1.0 : y + 0.0;
        g_value = grad(sum(y * y), x).item();  // d/dx x² = 1.5
      }  // the whole forward chain is destroyed here
      {
        D y = x;
        for (int i = 0; i < kChain / 4; ++i) y = y * 1.0;
        const auto g = grad(sum(y * y * y), x, {.create_graph = true});  // 3x², a second long chain
        gg_value = grad(g, x).item();                                      // 6x
      }
      done = true;
    }));
    CHECK(done);
    CHECK(g_value == 1.5);
    CHECK(gg_value == 4.5);
    CHECK(memory_stats().live_buffers == baseline);
  }

  TEST_CASE("autograd.memory: a long graph dropped without a backward pass tears down too") {
    bool done = false;
    REQUIRE(run_with_stack(kSmallStack, [&] {
      auto x = tensor<double>({1.0}).requires_grad_();
      D y = x;
      for (int i = 0; i < kChain; ++i) y = y * 1.0;
      y = D();  // drop the only handle on the chain
      done = true;
    }));
    CHECK(done);
  }

  TEST_CASE("autograd.memory: no reference cycles after create_graph walks") {
    const auto baseline = memory_stats().live_buffers;
    {
      auto x = tensor<double>({0.5, 2.0}).requires_grad_();
      auto w = tensor<double>({-1.0, 0.25}).requires_grad_();
      const auto loss = sum(tanh(x * w) * x);
      const auto gs = grad(loss, std::vector{x, w}, {.create_graph = true});
      const auto g2 = grad(sum(gs[0] * gs[1]), std::vector{x, w}, {.create_graph = true});
      const auto g3 = grad(sum(g2[0]), x);
      CHECK(memory_stats().live_buffers > baseline);
    }
    CHECK(memory_stats().live_buffers == baseline);
  }

  TEST_CASE("autograd.memory: backward(create_graph) ties a leaf to its grad; zero_grad unties them") {
    // As in PyTorch, the stored gradient's graph refers back to the leaf: a cycle that zero_grad()
    // (or using grad() instead of backward()) breaks.
    const auto baseline = memory_stats().live_buffers;
    {
      auto x = tensor<double>({0.5, 2.0}).requires_grad_();
      backward(sum(tanh(x) * x), {}, false, /*create_graph=*/true);
      REQUIRE(x.grad().requires_grad());
      x.zero_grad();
    }
    CHECK(memory_stats().live_buffers == baseline);
  }

  TEST_CASE("autograd.memory: a walk without retain_graph frees the saved tensors at once") {
    auto x = tensor<double>({0.5, 1.0, 1.5}).requires_grad_();
    auto y = sum(exp(tanh(x)));
    const auto before = memory_stats().live_buffers;
    const auto g = grad(y, x);
    // Only the gradient is new; the intermediates (tanh, exp outputs) went with the graph.
    CHECK(memory_stats().live_buffers <= before - 2 + 1);
    CHECK(g.numel() == 3);
  }

  TEST_CASE("autograd.memory: a second-order MLP loop runs in flat memory from the pool") {
    Generator gen(42);
    const auto x = randn<double>(Shape{8, 4}, gen), target = randn<double>(Shape{8, 1}, gen);
    auto w1 = mul(randn<double>(Shape{4, 16}, gen), 0.5).requires_grad_();
    auto b1 = zeros<double>(Shape{16}).requires_grad_();
    auto w2 = mul(randn<double>(Shape{16, 1}, gen), 0.25).requires_grad_();
    const std::vector<D> params{w1, b1, w2};

    const auto baseline = memory_stats();
    constexpr int kIterations = 10'000, kWarmup = 5;
    MemoryStats at_peak{}, after_warmup{};
    double first_loss = 0, last_loss = 0;
    bool flat = true;
    for (int it = 0; it < kIterations; ++it) {
      {
        const auto h = tanh(matmul(x, w1) + b1);
        const auto loss = mean(square(matmul(h, w2) - target));
        // An input-gradient-style penalty makes the step second order.
        const auto gs = grad(loss, params, {.create_graph = true});
        const auto objective = loss + 0.01 * (sum(square(gs[0])) + sum(square(gs[1])) + sum(square(gs[2])));
        const auto steps = grad(objective, params);
        for (std::size_t p = 0; p < params.size(); ++p) {
          D param = params[p];
          double* w = param.mutable_data();
          for (std::int64_t i = 0; i < param.numel(); ++i) w[i] -= 0.05 * steps[p].data()[i];
        }
        if (it == 0) first_loss = loss.item();
        last_loss = loss.item();
        const auto now = memory_stats();
        if (it == kWarmup) at_peak = now;
        if (it > kWarmup && (now.live_buffers != at_peak.live_buffers || now.live_bytes != at_peak.live_bytes))
          flat = false;
      }
      const auto now = memory_stats();
      if (now.live_buffers != baseline.live_buffers || now.live_bytes != baseline.live_bytes) flat = false;
      if (it == kWarmup) after_warmup = now;
    }
    CHECK(flat);
    CHECK(at_peak.live_buffers > baseline.live_buffers);  // the measurement saw a graph
    CHECK(memory_stats().system_allocs == after_warmup.system_allocs);
    CHECK(last_loss < first_loss);  // and it trained
  }
}
