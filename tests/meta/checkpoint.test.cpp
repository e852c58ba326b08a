// SPDX-License-Identifier: MIT
// The checkpointed unroll gives the plain unroll's hypergradient (to 1e-10 in double) for any
// segment length, and holds less memory at its peak.
#include "metagrad/core/storage.hpp"
#include "metagrad/meta/checkpoint.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/softmax.hpp"
#include "problem.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::testing;

namespace {
/// Inner SGD with a learning-rate tensor and per-example weights, both hyperparameters.
StepFn<D> weighted_step(const MetaProblem& pb, const Tensor<D>& lr, const Tensor<D>& w) {
  return sgd_step<D>(
      [&pb, w](const Tensors& p, std::int64_t k) {
        return div(sum(mul(select(w, 0, k), pb.inner_losses(p, k))), static_cast<D>(MetaProblem::batch));
      },
      lr);
}

double relative_gap(const Hypergradient<D>& a, const Hypergradient<D>& b) {
  double scale = 0;
  for (const auto* ts : {&b.grads, &b.state_grads})
    for (const auto& t : *ts)
      if (t.defined())
        for (auto v : t.values()) scale = std::max(scale, std::abs(v));
  const double state_gap = b.state_grads[0].defined() ? max_abs_diff(a.state_grads, b.state_grads) : 0.0;
  return std::max(max_abs_diff(a.grads, b.grads), state_gap) / scale;
}
}  // namespace

TEST_SUITE("meta.checkpoint") {
  TEST_CASE("meta.checkpointed_hypergradient: equals the plain unroll for every segment length") {
    for (std::int64_t k : {1, 7, 9, 10}) {
      const MetaProblem pb(k);
      Generator gen(3);
      auto lr = scalar_tensor<D>(0.4).requires_grad_();
      auto w = rand<D>({k, MetaProblem::batch}, gen, 0.5, 1.5).requires_grad_();
      const auto step = weighted_step(pb, lr, w);
      auto outer = [&](const Tensors& s) { return pb.outer(s); };
      Tensors start = clone(pb.params);
      for (auto& t : start) t.requires_grad_();
      const auto plain = unrolled_hypergradient<D>(start, step, outer, {lr, w}, {.steps = k});
      for (auto schedule : {CheckpointSchedule::segments, CheckpointSchedule::bisection})
        for (std::int64_t segment : {0, 1, 3, 4, 100}) {
          CAPTURE(k);
          CAPTURE(segment);
          CAPTURE(static_cast<int>(schedule));
          const auto ckpt = checkpointed_hypergradient<D>(start, step, outer, {lr, w},
                                                          {.steps = k, .segment = segment, .schedule = schedule});
          CHECK(std::abs(ckpt.outer_loss - plain.outer_loss) < 1e-12);
          CHECK(relative_gap(ckpt, plain) < 1e-10);
        }
      // Without a start that requires grad, only the hypergradient is computed, and it is the same.
      const auto hyper_only = checkpointed_hypergradient<D>(pb.params, step, outer, {lr, w}, {.steps = k});
      for (const auto& g : hyper_only.state_grads) CHECK_FALSE(g.defined());
      CHECK(max_abs_diff(hyper_only.grads, plain.grads) < 1e-10 * std::abs(plain.grads[0].item()));
    }
  }

  TEST_CASE("meta.checkpointed_hypergradient: a hyperparameter reached through graph shared by all steps") {
    // The feature weights are computed once from φ, outside the steps, so every segment's walk
    // passes through the same softmax node.
    constexpr std::int64_t k = 6;
    const MetaProblem pb(k);
    Generator gen(4);
    auto phi = randn<D>({MetaProblem::features}, gen).requires_grad_();
    const auto w = mul(softmax(phi, 0), static_cast<D>(MetaProblem::features));
    const auto step = sgd_step<D>(
        [&](const Tensors& p, std::int64_t i) {
          const auto& x = pb.xs[static_cast<std::size_t>(i)];
          return cross_entropy(MetaProblem::logits(p, mul(x, w)), pb.ys[static_cast<std::size_t>(i)]);
        },
        0.5);
    auto outer = [&](const Tensors& s) { return pb.outer(s); };
    const auto ckpt = checkpointed_hypergradient<D>(pb.params, step, outer, {phi}, {.steps = k, .segment = 2});
    const auto bisect = checkpointed_hypergradient<D>(pb.params, step, outer, {phi},
                                                      {.steps = k, .schedule = CheckpointSchedule::bisection});
    const auto plain = unrolled_hypergradient<D>(pb.params, step, outer, {phi}, {.steps = k});
    CHECK(relative_gap(ckpt, plain) < 1e-10);
    CHECK(relative_gap(bisect, plain) < 1e-10);
  }

  TEST_CASE("meta.checkpointed_hypergradient: peak memory is lower than the plain unroll's") {
    // Wide enough that the graph of the steps, not the data, dominates memory.
    constexpr std::int64_t k = 16, features = 64, hidden = 128, classes = 10, batch = 32;
    Generator gen(2);
    const Tensors params = {randn<D>({hidden, features}, gen, 0.0, 0.1), zeros<D>({hidden}),
                            randn<D>({classes, hidden}, gen, 0.0, 0.1), zeros<D>({classes})};
    const auto x = randn<D>({batch, features}, gen);
    const auto y = randint(0, classes, {batch}, gen);
    auto lr = scalar_tensor<D>(0.1).requires_grad_();
    auto logits = [&](const Tensors& p) { return linear(tanh(linear(x, p[0], p[1])), p[2], p[3]); };
    const auto step = sgd_step<D>([&](const Tensors& p, std::int64_t) { return cross_entropy(logits(p), y); }, lr);
    auto outer = [&](const Tensors& p) { return cross_entropy(logits(p), y); };

    auto peak_of = [&](auto&& run) {
      const std::int64_t before = memory_stats().live_bytes;
      reset_peak_memory();
      auto h = run();
      return std::pair{memory_stats().peak_bytes - before, h};
    };
    const auto [plain_peak, plain] =
        peak_of([&] { return unrolled_hypergradient<D>(params, step, outer, {lr}, {.steps = k}); });
    const auto [ckpt_peak, ckpt] =
        peak_of([&] { return checkpointed_hypergradient<D>(params, step, outer, {lr}, {.steps = k}); });
    const auto [bisect_peak, bisect] = peak_of([&] {
      return checkpointed_hypergradient<D>(params, step, outer, {lr},
                                           {.steps = k, .schedule = CheckpointSchedule::bisection});
    });
    MESSAGE("K = ", k, ": peak bytes plain ", plain_peak, ", checkpointed (segments of 4) ", ckpt_peak,
            ", bisection ", bisect_peak);
    CHECK(relative_gap(ckpt, plain) < 1e-10);
    CHECK(relative_gap(bisect, plain) < 1e-10);
    CHECK(ckpt_peak < plain_peak / 2);
    CHECK(bisect_peak < ckpt_peak);
  }

  TEST_CASE("meta.checkpointed_hypergradient: bad input is reported") {
    const MetaProblem pb(2);
    auto lr = scalar_tensor<D>(0.4).requires_grad_();
    const auto step = sgd_step<D>([&](const Tensors& p, std::int64_t k) { return mean(pb.inner_losses(p, k)); }, lr);
    auto outer = [&](const Tensors& s) { return pb.outer(s); };
    METAGRAD_CHECK_ERROR(checkpointed_hypergradient<D>(pb.params, step, outer, {lr}, {.steps = 2, .segment = -1}),
                         "checkpointed_hypergradient", "segment");
    METAGRAD_CHECK_ERROR(checkpointed_hypergradient<D>(pb.params, step, outer, {lr.detach()}, {.steps = 2}),
                         "checkpointed_hypergradient", "does not require grad");
    const StepFn<D> bad = [&](const Tensors& s, std::int64_t k, bool cg) {
      auto next = step(s, k, cg);
      next.pop_back();
      return next;
    };
    METAGRAD_CHECK_ERROR(checkpointed_hypergradient<D>(pb.params, bad, outer, {lr}, {.steps = 2}),
                         "checkpointed_hypergradient", "returned 3 tensors");
  }
}
