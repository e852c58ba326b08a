// SPDX-License-Identifier: MIT
// Hypergradients through an unrolled inner loop: d outer(state_K) / d h for any tensors h the
// steps depend on (learning rates, per-example loss weights, an explainer's parameters), and
// d outer / d state_0 (the MAML meta-gradient). Truncated unrolls backpropagate through only the
// last T steps. The results are plain values (no graph): the outer optimizer consumes them.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "metagrad/meta/unroll.hpp"

namespace metagrad {

/// The outer objective of the final inner state.
template <Floating T>
using OuterLoss = std::function<Tensor<T>(const std::vector<Tensor<T>>& final_state)>;

template <Floating T>
struct Hypergradient {
  T outer_loss = 0;
  /// d outer / d hyperparameters[i] (zeros where the outer loss does not depend on it).
  std::vector<Tensor<T>> grads;
  /// d outer / d state_0[i] for the state tensors that require grad (undefined for the others,
  /// which saves the work that only leads to them); through a truncated unroll, w.r.t. the state
  /// where backprop starts.
  std::vector<Tensor<T>> state_grads;
};

namespace detail {

template <Floating T>
void check_hyperparameters(const std::vector<Tensor<T>>& hyper, const char* op) {
  for (std::size_t i = 0; i < hyper.size(); ++i) {
    check(hyper[i].defined(), op, "hyperparameter ", i, " is undefined");
    check(hyper[i].requires_grad(), op, "hyperparameter ", i, " of shape ", hyper[i].shape(),
          " does not require grad; call requires_grad_() on it before building the steps");
  }
}

/// Gradients of `out` (seeded with `seeds`, or ones for a scalar) w.r.t. `inputs`, detached, with
/// zeros where there is no dependence.
template <Floating T>
std::vector<Tensor<T>> gradients_or_zeros(std::span<const Tensor<T>> outs, std::span<const Tensor<T>> inputs,
                                          std::vector<Tensor<T>> seeds = {}, bool retain_graph = false) {
  std::vector<Tensor<T>> live_outs, live_seeds;
  for (std::size_t j = 0; j < outs.size(); ++j)
    if (outs[j].requires_grad()) {
      live_outs.push_back(outs[j]);
      if (!seeds.empty()) live_seeds.push_back(seeds[j]);
    }
  std::vector<Tensor<T>> g(inputs.size());
  if (!live_outs.empty()) {
    GradOptions<T> o;
    o.grad_outputs = std::move(live_seeds);
    o.allow_unused = true;
    o.retain_graph = retain_graph;
    g = grad<T>(std::span<const Tensor<T>>(live_outs), inputs, o);
  }
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = g[i].defined() ? g[i].detach() : zeros<T>(inputs[i].shape());
  return g;
}

}  // namespace detail

/// Unrolls `options.steps` steps of `step` from `state`, evaluates `outer` on the final state and
/// returns its value and its gradients w.r.t. `hyper` and the starting state. Memory grows with
/// the number of backpropagated steps; checkpointed_hypergradient trades compute for it.
template <Floating T>
Hypergradient<T> unrolled_hypergradient(const std::vector<Tensor<T>>& state, const StepFn<T>& step,
                                        const OuterLoss<T>& outer, const std::vector<Tensor<T>>& hyper,
                                        const UnrollOptions& options) {
  detail::check_unroll_options(options, "unrolled_hypergradient");
  detail::check_hyperparameters(hyper, "unrolled_hypergradient");
  const std::int64_t kept = options.backprop_steps == 0 ? options.steps : options.backprop_steps;
  EnableGradGuard recording;
  std::vector<Tensor<T>> start = detail::start_variables(state, "unrolled_hypergradient");
  if (kept < options.steps)
    start = detail::advance_detached(std::move(start), step, 0, options.steps - kept, "unrolled_hypergradient");
  std::vector<Tensor<T>> s = start;
  for (std::int64_t k = options.steps - kept; k < options.steps; ++k)
    s = detail::checked_step(step, s, k, true, "unrolled_hypergradient");
  const Tensor<T> loss = outer(s);
  check(loss.defined() && loss.numel() == 1, "unrolled_hypergradient", "the outer loss must be a one-element tensor");
  s.clear();  // the outer loss holds what it needs; the rest of the graph goes with the grad walk
  std::vector<Tensor<T>> inputs = hyper;
  for (std::size_t i = 0; i < state.size(); ++i)
    if (state[i].requires_grad()) inputs.push_back(start[i]);
  auto g = detail::gradients_or_zeros<T>({&loss, 1}, inputs);
  Hypergradient<T> out;
  out.outer_loss = loss.item();
  out.grads.assign(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(hyper.size()));
  out.state_grads.resize(state.size());
  for (std::size_t i = 0, j = hyper.size(); i < state.size(); ++i)
    if (state[i].requires_grad()) out.state_grads[i] = std::move(g[j++]);
  return out;
}

}  // namespace metagrad
