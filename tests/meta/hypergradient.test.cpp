// SPDX-License-Identifier: MIT
// Hypergradients through an unrolled inner loop against central finite differences of the outer
// loss, in double: the inner learning rate, per-example loss weights, an explainer's parameters
// and the initial parameters; and truncated unrolls.
#include "metagrad/meta/hypergradient.hpp"
#include "metagrad/ops/shape.hpp"
#include "problem.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::testing;

namespace {
constexpr std::int64_t kInnerSteps = 4;

/// Outer loss after a plain unroll (what finite differences perturb).
double outer_after(const MetaProblem& pb, const Tensors& start, const StepFn<D>& step, std::int64_t steps = kInnerSteps) {
  const auto final_state = unroll<D>(start, step, {.steps = steps});
  return pb.outer(final_state).item();
}

double norm_of(const Tensors& ts) {
  double s = 0;
  for (const auto& t : ts)
    for (auto v : t.values()) s += v * v;
  return std::sqrt(s);
}
}  // namespace

TEST_SUITE("meta.hypergradient") {
  TEST_CASE("meta.unrolled_hypergradient: the inner learning rate matches finite differences") {
    const MetaProblem pb(kInnerSteps);
    auto make_step = [&](const Tensor<D>& lr) {
      return sgd_step<D>([&](const Tensors& p, std::int64_t k) { return mean(pb.inner_losses(p, k)); }, lr);
    };
    auto lr = scalar_tensor<D>(0.4).requires_grad_();
    const auto h = unrolled_hypergradient<D>(pb.params, make_step(lr), [&](const Tensors& s) { return pb.outer(s); },
                                             {lr}, {.steps = kInnerSteps});
    const auto fd = finite_differences([&](const Tensors& hy) { return outer_after(pb, pb.params, make_step(hy[0])); },
                                       {lr.detach()});
    CHECK(std::abs(h.outer_loss - outer_after(pb, pb.params, make_step(lr.detach()))) < 1e-14);
    CHECK(std::abs(fd[0].item()) > 1e-3);  // a real dependence, not 0 == 0
    CHECK(worst_ratio(h.grads, fd, 1e-9) < 1e-6);
  }

  TEST_CASE("meta.unrolled_hypergradient: per-example loss weights match finite differences") {
    const MetaProblem pb(kInnerSteps);
    Generator gen(3);
    auto weights = rand<D>({kInnerSteps, MetaProblem::batch}, gen, 0.5, 1.5).requires_grad_();
    auto make_step = [&](const Tensor<D>& w) {
      return sgd_step<D>(
          [&pb, w](const Tensors& p, std::int64_t k) {
            return div(sum(mul(select(w, 0, k), pb.inner_losses(p, k))), static_cast<D>(MetaProblem::batch));
          },
          0.5);
    };
    const auto h = unrolled_hypergradient<D>(pb.params, make_step(weights),
                                             [&](const Tensors& s) { return pb.outer(s); }, {weights}, {.steps = kInnerSteps});
    const auto fd = finite_differences([&](const Tensors& hy) { return outer_after(pb, pb.params, make_step(hy[0])); },
                                       {weights.detach()});
    CHECK(norm_of(fd) > 1e-3);
    CHECK(worst_ratio(h.grads, fd, 1e-9) < 1e-6);
  }

  TEST_CASE("meta.unrolled_hypergradient: an explainer's parameters match finite differences") {
    // The explainer a(x) = sigmoid(x Eᵀ + c) weights every input feature of every example; the
    // student's inner loss sees x ⊙ a(x), so E and c reach the outer loss only through the steps.
    const MetaProblem pb(kInnerSteps);
    Generator gen(5);
    const std::int64_t f = MetaProblem::features;
    auto e = randn<D>({f, f}, gen, 0.0, 0.5).requires_grad_();
    auto c = randn<D>({f}, gen, 0.0, 0.5).requires_grad_();
    auto make_step = [&](const Tensor<D>& ew, const Tensor<D>& cb) {
      return sgd_step<D>(
          [&pb, ew, cb](const Tensors& p, std::int64_t k) {
            const auto& x = pb.xs[static_cast<std::size_t>(k)];
            return cross_entropy(MetaProblem::logits(p, mul(x, sigmoid(linear(x, ew, cb)))),
                                 pb.ys[static_cast<std::size_t>(k)]);
          },
          0.5);
    };
    const auto h = unrolled_hypergradient<D>(pb.params, make_step(e, c), [&](const Tensors& s) { return pb.outer(s); },
                                             {e, c}, {.steps = kInnerSteps});
    const auto fd = finite_differences(
        [&](const Tensors& hy) { return outer_after(pb, pb.params, make_step(hy[0], hy[1])); }, {e.detach(), c.detach()});
    CHECK(norm_of(fd) > 1e-3);
    CHECK(worst_ratio(h.grads, fd, 1e-9) < 1e-6);
  }

  TEST_CASE("meta.unrolled_hypergradient: the initial parameters' gradient matches finite differences") {
    const MetaProblem pb(kInnerSteps);
    const auto step = sgd_step<D>([&](const Tensors& p, std::int64_t k) { return mean(pb.inner_losses(p, k)); }, 0.5);
    auto lr_dummy = scalar_tensor<D>(1.0).requires_grad_();  // unused: its hypergradient is 0
    Tensors start = clone(pb.params);
    for (auto& t : start) t.requires_grad_();
    const auto h = unrolled_hypergradient<D>(start, step, [&](const Tensors& s) { return pb.outer(s); },
                                             {lr_dummy}, {.steps = kInnerSteps});
    CHECK(h.grads[0].item() == 0.0);
    // Not asked for (the start does not require grad): not computed.
    const auto none = unrolled_hypergradient<D>(pb.params, step, [&](const Tensors& s) { return pb.outer(s); },
                                                {lr_dummy}, {.steps = kInnerSteps});
    for (const auto& g : none.state_grads) CHECK_FALSE(g.defined());
    const auto fd = finite_differences([&](const Tensors& p) { return outer_after(pb, p, step); }, pb.params);
    CHECK(norm_of(fd) > 1e-3);
    CHECK(worst_ratio(h.state_grads, fd, 1e-9) < 1e-6);
  }

  TEST_CASE("meta.unrolled_hypergradient: a truncated unroll backpropagates through the last T steps only") {
    constexpr std::int64_t T = 2;
    const MetaProblem pb(kInnerSteps);
    auto lr = scalar_tensor<D>(0.4).requires_grad_();
    const StepFn<D> step =
        sgd_step<D>([&](const Tensors& p, std::int64_t k) { return mean(pb.inner_losses(p, k)); }, lr);
    auto outer = [&](const Tensors& s) { return pb.outer(s); };
    Tensors start = clone(pb.params);
    for (auto& t : start) t.requires_grad_();
    const auto full = unrolled_hypergradient<D>(start, step, outer, {lr}, {.steps = kInnerSteps});
    const auto same = unrolled_hypergradient<D>(start, step, outer, {lr}, {.steps = kInnerSteps, .backprop_steps = kInnerSteps});
    const auto truncated = unrolled_hypergradient<D>(start, step, outer, {lr}, {.steps = kInnerSteps, .backprop_steps = T});
    CHECK(same.grads[0].item() == full.grads[0].item());
    CHECK(truncated.outer_loss == doctest::Approx(full.outer_loss).epsilon(1e-13));

    // Reference: run K - T steps, cut the graph, and differentiate a T-step unroll from there.
    Tensors middle;
    for (const auto& t : unroll<D>(pb.params, step, {.steps = kInnerSteps - T})) middle.push_back(t.detach().requires_grad_());
    const StepFn<D> shifted = [&](const Tensors& s, std::int64_t k, bool cg) { return step(s, k + (kInnerSteps - T), cg); };
    const auto ref = unrolled_hypergradient<D>(middle, shifted, outer, {lr}, {.steps = T});
    CHECK(std::abs(truncated.grads[0].item() - ref.grads[0].item()) < 1e-13);
    CHECK(max_abs_diff(truncated.state_grads, ref.state_grads) < 1e-13);
    // Truncation changes the answer here (the early steps matter).
    CHECK(std::abs(truncated.grads[0].item() - full.grads[0].item()) > 1e-4);
  }

  TEST_CASE("meta.unrolled_hypergradient: bad input is reported") {
    const MetaProblem pb(kInnerSteps);
    auto lr = scalar_tensor<D>(0.4);
    const auto step = sgd_step<D>([&](const Tensors& p, std::int64_t k) { return mean(pb.inner_losses(p, k)); }, lr);
    auto outer = [&](const Tensors& s) { return pb.outer(s); };
    METAGRAD_CHECK_ERROR(unrolled_hypergradient<D>(pb.params, step, outer, {lr}, {.steps = kInnerSteps}),
                         "unrolled_hypergradient", "does not require grad");
    lr.requires_grad_();
    METAGRAD_CHECK_ERROR(unrolled_hypergradient<D>(pb.params, step, outer, {lr}, {.steps = kInnerSteps, .backprop_steps = kInnerSteps + 1}),
                         "unrolled_hypergradient", "backprop_steps");
    METAGRAD_CHECK_ERROR(unrolled_hypergradient<D>(
                             pb.params, step, [&](const Tensors& s) { return pb.logits(s, pb.x_val); }, {lr}, {.steps = 1}),
                         "unrolled_hypergradient", "one-element");
  }
}
