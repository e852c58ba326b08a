// SPDX-License-Identifier: MIT
// unroll(): K steps on the graph, the same values as hand-written gradient descent; truncation
// cuts the graph; optimizer_step runs a differentiable optimizer; bad steps are reported.
#include "metagrad/meta/unroll.hpp"
#include "problem.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::testing;

namespace {
constexpr std::int64_t kSteps = 3;
}

TEST_SUITE("meta.unroll") {
  TEST_CASE("meta.unroll: K sgd steps equal hand-written gradient descent") {
    const MetaProblem pb(kSteps);
    const D lr = 0.4;
    const auto step = sgd_step<D>([&](const Tensors& p, std::int64_t k) { return mean(pb.inner_losses(p, k)); }, lr);
    const auto unrolled = unroll<D>(pb.params, step, {.steps = kSteps});

    Tensors p = clone(pb.params);
    for (std::int64_t k = 0; k < kSteps; ++k) {
      for (auto& t : p) t.requires_grad_();
      const auto g = grad<D>(mean(pb.inner_losses(p, k)), p);
      NoGradGuard no_grad;
      for (std::size_t i = 0; i < p.size(); ++i) p[i] = sub(p[i], mul(g[i], lr));
    }
    for (std::size_t i = 0; i < p.size(); ++i) {
      CHECK(unrolled[i].requires_grad());
      CHECK(allclose(unrolled[i].detach(), p[i], 1e-14, 1e-13));
    }
    CHECK(max_abs_diff(unrolled, pb.params) > 1e-3);  // the steps did move the parameters
  }

  TEST_CASE("meta.unroll: the result stays on the graph of the start and the learning rate") {
    const MetaProblem pb(kSteps);
    auto lr = scalar_tensor<D>(0.4).requires_grad_();
    Tensors start = clone(pb.params);
    for (auto& t : start) t.requires_grad_();
    const auto step = sgd_step<D>([&](const Tensors& p, std::int64_t k) { return mean(pb.inner_losses(p, k)); }, lr);
    const auto out = pb.outer(unroll<D>(start, step, {.steps = kSteps}));
    Tensors inputs = start;
    inputs.push_back(lr);
    const auto g = grad<D>(out, inputs);
    for (const auto& gi : g) CHECK(gi.defined());

    // Truncated to the last step: the start is cut off, the learning rate still reached.
    const auto cut = pb.outer(unroll<D>(start, step, {.steps = kSteps, .backprop_steps = 1}));
    const auto gc = grad<D>(cut, inputs, {.allow_unused = true});
    for (std::size_t i = 0; i < start.size(); ++i) CHECK_FALSE(gc[i].defined());
    CHECK(gc.back().defined());
  }

  TEST_CASE("meta.unroll: optimizer_step with DifferentiableSGD equals sgd_step") {
    const MetaProblem pb(kSteps);
    auto lr = scalar_tensor<D>(0.4).requires_grad_();
    auto loss = [&](const Tensors& p, std::int64_t k) { return mean(pb.inner_losses(p, k)); };
    DifferentiableSGD<D> opt;
    opt.set_lr(lr);
    const auto a = unroll<D>(pb.params, optimizer_step<D>(loss, opt), {.steps = kSteps});
    const auto b = unroll<D>(pb.params, sgd_step<D>(loss, lr), {.steps = kSteps});
    CHECK(max_abs_diff(a, b) < 1e-14);
    const auto ga = grad<D>(pb.outer(a), lr), gb = grad<D>(pb.outer(b), lr);
    CHECK(std::abs(ga.item() - gb.item()) < 1e-13);
    CHECK(std::abs(ga.item()) > 1e-4);
  }

  TEST_CASE("meta.unroll: zero steps return the start") {
    const MetaProblem pb(1);
    const auto step = sgd_step<D>([&](const Tensors& p, std::int64_t k) { return mean(pb.inner_losses(p, k)); }, 0.1);
    const auto out = unroll<D>(pb.params, step, {.steps = 0});
    CHECK(max_abs_diff(out, pb.params) == 0.0);
  }

  TEST_CASE("meta.unroll: bad input is reported") {
    const MetaProblem pb(kSteps);
    const auto step = sgd_step<D>([&](const Tensors& p, std::int64_t k) { return mean(pb.inner_losses(p, k)); }, 0.1);
    METAGRAD_CHECK_ERROR(unroll<D>(pb.params, step, {.steps = -1}), "unroll", "steps must be >= 0");
    METAGRAD_CHECK_ERROR(unroll<D>(pb.params, step, {.steps = 2, .backprop_steps = 3}), "unroll", "backprop_steps 3");
    METAGRAD_CHECK_ERROR(unroll<D>({}, step, {.steps = 1}), "unroll", "empty state");
    const StepFn<D> reshaping = [](const Tensors& s, std::int64_t, bool) {
      Tensors next = s;
      next[1] = zeros<D>({2});
      return next;
    };
    METAGRAD_CHECK_ERROR(unroll<D>(pb.params, reshaping, {.steps = 1}), "unroll", "step 0 returned tensor 1 of shape [2]",
                         "[6]");
  }
}
