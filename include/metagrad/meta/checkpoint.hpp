// SPDX-License-Identifier: MIT
// A checkpointed unroll: the same hypergradient as unrolled_hypergradient, with memory that does
// not grow with K like the plain unroll's graph. Both schedules store only states (no graph) and,
// in the backward sweep, recompute one segment of steps at a time from a stored state with
// create_graph and backpropagate the adjoint (d outer / d state at the segment's end) through it,
// which yields the adjoint at the segment's start and the segment's share of the hypergradient.
// Only one segment's graph is alive at a time.
//  - segments: the forward sweep keeps the state at the start of every segment of S steps;
//    memory ≈ K/S states + S steps' graphs, O(√K) at S = ⌈√K⌉, for one extra forward sweep.
//  - bisection: keeps the start state, recomputes the midpoint, backpropagates the second half
//    and then the first, recursively; memory ≈ log₂K states + one segment's graph (nearly flat
//    in K), for about K·log₂K extra steps without a graph.
// Needs a pure StepFn (sgd_step, or one of your own; not optimizer_step).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "metagrad/meta/hypergradient.hpp"

namespace metagrad {

enum class CheckpointSchedule { segments, bisection };

struct CheckpointOptions {
  /// Inner steps K.
  std::int64_t steps = 1;
  /// Steps per recomputed segment; 0 picks ⌈√K⌉ for `segments` and 1 for `bisection`.
  std::int64_t segment = 0;
  CheckpointSchedule schedule = CheckpointSchedule::segments;
};

namespace detail {

/// The backward sweep's unit: recompute steps [begin, end) from `start` with a graph, pull
/// `adjoint` (at `end`) back through them, add their share to `grads`, return the adjoint at
/// `begin`. At begin = 0 only the start tensors in `wanted` get one (undefined for the others).
template <Floating T>
std::vector<Tensor<T>> backprop_segment(const StepFn<T>& step, const std::vector<Tensor<T>>& hyper,
                                        const std::vector<Tensor<T>>& start, std::int64_t begin, std::int64_t end,
                                        std::vector<Tensor<T>> adjoint, const std::vector<bool>& wanted,
                                        std::vector<Tensor<T>>& grads, const char* op) {
  std::vector<Tensor<T>> seg = start;
  for (std::int64_t k = begin; k < end; ++k) seg = checked_step(step, seg, k, true, op);
  auto wants = [&](std::size_t i) { return begin > 0 || wanted[i]; };
  std::vector<Tensor<T>> inputs = hyper;
  for (std::size_t i = 0; i < start.size(); ++i)
    if (wants(i)) inputs.push_back(start[i]);
  // retain_graph: the steps may share graph upstream of them (feature weights computed once from
  // an explainer's φ) that every segment walks; this segment's own graph dies with `seg`.
  auto g = gradients_or_zeros<T>(std::span<const Tensor<T>>(seg), inputs, std::move(adjoint), /*retain_graph=*/true);
  seg.clear();
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < hyper.size(); ++i) grads[i] = add(grads[i], g[i]);
  std::vector<Tensor<T>> at_begin(start.size());
  for (std::size_t i = 0, next = hyper.size(); i < start.size(); ++i)
    if (wants(i)) at_begin[i] = std::move(g[next++]);
  return at_begin;
}

/// The bisection schedule over [begin, end) from the stored `start`.
template <Floating T>
std::vector<Tensor<T>> backprop_bisect(const StepFn<T>& step, const std::vector<Tensor<T>>& hyper,
                                       const std::vector<Tensor<T>>& start, std::int64_t begin, std::int64_t end,
                                       std::int64_t base, std::vector<Tensor<T>> adjoint,
                                       const std::vector<bool>& wanted, std::vector<Tensor<T>>& grads, const char* op) {
  if (end - begin <= base) return backprop_segment(step, hyper, start, begin, end, std::move(adjoint), wanted, grads, op);
  const std::int64_t mid = begin + (end - begin) / 2;
  adjoint = backprop_bisect(step, hyper, advance_detached(start, step, begin, mid, op), mid, end, base,
                            std::move(adjoint), wanted, grads, op);
  return backprop_bisect(step, hyper, start, begin, mid, base, std::move(adjoint), wanted, grads, op);
}

}  // namespace detail

/// d outer(state_K) / d hyper and d outer / d state_0 (for the state tensors that require grad),
/// as unrolled_hypergradient computes them (to rounding), recomputing the unroll instead of
/// storing its graph.
template <Floating T>
Hypergradient<T> checkpointed_hypergradient(const std::vector<Tensor<T>>& state, const StepFn<T>& step,
                                            const OuterLoss<T>& outer, const std::vector<Tensor<T>>& hyper,
                                            const CheckpointOptions& options) {
  constexpr const char* op = "checkpointed_hypergradient";
  check(options.steps >= 0, op, "steps must be >= 0, got ", options.steps);
  check(options.segment >= 0, op, "segment must be >= 0, got ", options.segment);
  check(!state.empty(), op, "empty state");
  detail::check_hyperparameters(hyper, op);
  const std::int64_t K = options.steps;
  const bool bisection = options.schedule == CheckpointSchedule::bisection;
  const std::int64_t S =
      options.segment > 0 ? options.segment
      : bisection         ? 1
                          : std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(K)))));
  EnableGradGuard recording;

  std::vector<Tensor<T>> start;
  std::vector<bool> wanted;
  for (std::size_t i = 0; i < state.size(); ++i) {
    check(state[i].defined(), op, "state tensor ", i, " is undefined");
    start.push_back(state[i].detach().requires_grad_());
    wanted.push_back(state[i].requires_grad());
  }
  // Forward sweep without a graph; the segments schedule keeps the start of every segment.
  std::vector<std::vector<Tensor<T>>> checkpoints;
  std::vector<Tensor<T>> s = start;
  for (std::int64_t k = 0; k < K; ++k) {
    if (!bisection && k % S == 0) checkpoints.push_back(s);
    s = detail::fresh_leaves(detail::checked_step(step, s, k, false, op));
  }

  // The outer loss gives the first adjoint and the hyperparameters' direct share.
  Hypergradient<T> out;
  std::vector<Tensor<T>> adjoint;
  {
    const Tensor<T> loss = outer(s);
    check(loss.defined() && loss.numel() == 1, op, "the outer loss must be a one-element tensor");
    out.outer_loss = loss.item();
    std::vector<Tensor<T>> inputs = hyper;
    inputs.insert(inputs.end(), s.begin(), s.end());
    auto g = detail::gradients_or_zeros<T>({&loss, 1}, inputs, {}, /*retain_graph=*/true);
    out.grads.assign(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(hyper.size()));
    adjoint.assign(g.begin() + static_cast<std::ptrdiff_t>(hyper.size()), g.end());
  }
  s.clear();

  if (K > 0 && bisection) {
    adjoint = detail::backprop_bisect(step, hyper, start, 0, K, S, std::move(adjoint), wanted, out.grads, op);
  } else {
    for (std::size_t j = checkpoints.size(); j-- > 0;) {
      const std::int64_t begin = static_cast<std::int64_t>(j) * S;
      const std::vector<Tensor<T>> from = std::move(checkpoints[j]);
      checkpoints.pop_back();
      adjoint = detail::backprop_segment(step, hyper, from, begin, std::min(K, begin + S), std::move(adjoint), wanted,
                                         out.grads, op);
    }
  }
  out.state_grads.resize(state.size());
  for (std::size_t i = 0; i < state.size(); ++i)
    if (wanted[i]) out.state_grads[i] = std::move(adjoint[i]);
  return out;
}

}  // namespace metagrad
