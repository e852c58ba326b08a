// SPDX-License-Identifier: MIT
// Unrolled inner loops: K update steps whose results stay on the graph, so an outer loss of the
// final state differentiates back through every step to whatever the steps depend on (learning
// rates, per-example weights, an explainer's parameters, the initial parameters).
//
// The loop is written over a StepFn: state_{k+1} = step(state_k, k, create_graph). The state is a
// list of tensors (the parameters, plus e.g. momentum buffers), and hyperparameters are captured
// by the step. `create_graph` says whether the step must be differentiable; the truncated part of
// an unroll and the forward sweep of a checkpointed one run it without, which saves the graph.
// A StepFn must be a pure function of (state, k): the checkpointed unroll calls it again for the
// same k and relies on getting the same values.
#pragma once
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/optim/differentiable.hpp"

namespace metagrad {

/// The inner objective at step k of parameters `params`.
template <Floating T>
using InnerLoss = std::function<Tensor<T>(const std::vector<Tensor<T>>& params, std::int64_t step)>;

/// One update of the inner state; with create_graph the result must be differentiable w.r.t. the
/// state and the captured hyperparameters.
template <Floating T>
using StepFn = std::function<std::vector<Tensor<T>>(const std::vector<Tensor<T>>& state, std::int64_t step,
                                                    bool create_graph)>;

struct UnrollOptions {
  /// Inner steps K.
  std::int64_t steps = 1;
  /// Backpropagate through only the last `backprop_steps` steps (0: all K). The earlier steps run
  /// without a graph and their result enters as a constant.
  std::int64_t backprop_steps = 0;
};

namespace detail {

inline void check_unroll_options(const UnrollOptions& o, const char* op) {
  check(o.steps >= 0, op, "steps must be >= 0, got ", o.steps);
  check(o.backprop_steps >= 0 && o.backprop_steps <= o.steps, op, "backprop_steps ", o.backprop_steps,
        " must be in [0, steps = ", o.steps, "]");
}

/// Leaves with the values of `state` and requires_grad (the inner gradient is taken w.r.t. them).
template <Floating T>
std::vector<Tensor<T>> fresh_leaves(const std::vector<Tensor<T>>& state) {
  std::vector<Tensor<T>> out;
  out.reserve(state.size());
  for (const auto& s : state) out.push_back(s.detach().requires_grad_());
  return out;
}

/// Variables to start an unroll from: the given tensors where they already require grad (so the
/// graph reaches back to them), fresh leaves elsewhere.
template <Floating T>
std::vector<Tensor<T>> start_variables(const std::vector<Tensor<T>>& state, const char* op) {
  check(!state.empty(), op, "empty state");
  std::vector<Tensor<T>> out;
  out.reserve(state.size());
  for (std::size_t i = 0; i < state.size(); ++i) {
    check(state[i].defined(), op, "state tensor ", i, " is undefined");
    out.push_back(state[i].requires_grad() ? state[i] : state[i].detach().requires_grad_());
  }
  return out;
}

template <Floating T>
std::vector<Tensor<T>> checked_step(const StepFn<T>& step, const std::vector<Tensor<T>>& state, std::int64_t k,
                                    bool create_graph, const char* op) {
  auto next = step(state, k, create_graph);
  check(next.size() == state.size(), op, "step ", k, " returned ", next.size(), " tensors for a state of ",
        state.size());
  for (std::size_t i = 0; i < next.size(); ++i)
    check(next[i].defined() && next[i].shape() == state[i].shape(), op, "step ", k, " returned tensor ", i,
          " of shape ", next[i].defined() ? next[i].shape().str() : std::string("<undefined>"), " for a state of shape ",
          state[i].shape());
  return next;
}

/// Runs steps [begin, end) without a graph and returns fresh leaves holding the result.
template <Floating T>
std::vector<Tensor<T>> advance_detached(std::vector<Tensor<T>> state, const StepFn<T>& step, std::int64_t begin,
                                        std::int64_t end, const char* op) {
  EnableGradGuard recording;  // the inner gradient needs the forward graph, even without create_graph
  for (std::int64_t k = begin; k < end; ++k) state = fresh_leaves(checked_step(step, state, k, false, op));
  return state;
}

/// p' = p - lr * dloss/dp with lr a tensor (when defined) or the plain number `scalar_lr`.
template <Floating T>
StepFn<T> gradient_descent(InnerLoss<T> loss, Tensor<T> lr, T scalar_lr) {
  return [loss = std::move(loss), lr = std::move(lr), scalar_lr](const std::vector<Tensor<T>>& params,
                                                                 std::int64_t k, bool create_graph) {
    GradOptions<T> o;
    o.create_graph = create_graph;
    o.allow_unused = true;
    const auto grads = grad<T>(loss(params, k), params, o);
    GradModeGuard recording(create_graph && GradMode::enabled());
    std::vector<Tensor<T>> next(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (!grads[i].defined()) next[i] = params[i];
      else next[i] = sub(params[i], lr.defined() ? mul(grads[i], lr) : mul(grads[i], scalar_lr));
    }
    return next;
  };
}
}  // namespace detail

/// Gradient descent on `loss` with a learning-rate tensor (a scalar or one broadcastable to every
/// parameter), which makes it a hyperparameter: p' = p - lr * dloss/dp.
template <Floating T>
StepFn<T> sgd_step(InnerLoss<T> loss, Tensor<T> lr) {
  check(lr.defined(), "sgd_step", "undefined learning rate");
  return detail::gradient_descent<T>(std::move(loss), std::move(lr), T(0));
}
/// Gradient descent with a fixed learning rate.
template <Floating T>
StepFn<T> sgd_step(InnerLoss<T> loss, T lr) {
  return detail::gradient_descent<T>(std::move(loss), Tensor<T>(), lr);
}

/// Steps of a differentiable optimizer. Its state (momentum, moments) lives in the optimizer, so
/// this step is not pure: use it with unroll(), not with a checkpointed unroll, and reset() the
/// optimizer before each unroll.
template <Floating T>
StepFn<T> optimizer_step(InnerLoss<T> loss, DifferentiableOptimizer<T>& opt) {
  return [loss = std::move(loss), &opt](const std::vector<Tensor<T>>& params, std::int64_t k, bool create_graph) {
    GradOptions<T> o;
    o.create_graph = create_graph && !opt.first_order();
    o.allow_unused = true;
    const auto grads = grad<T>(loss(params, k), params, o);
    GradModeGuard recording(create_graph && GradMode::enabled());
    return opt.step(params, grads);
  };
}

/// The state after `options.steps` steps from `state`, on the graph of the last backprop_steps
/// steps (all of them by default). Tensors of `state` that require grad stay connected; others
/// become fresh leaves.
template <Floating T>
std::vector<Tensor<T>> unroll(const std::vector<Tensor<T>>& state, const StepFn<T>& step,
                              const UnrollOptions& options) {
  detail::check_unroll_options(options, "unroll");
  const std::int64_t kept = options.backprop_steps == 0 ? options.steps : options.backprop_steps;
  const std::int64_t cut = options.steps - kept;
  std::vector<Tensor<T>> s = detail::start_variables(state, "unroll");
  if (cut > 0) s = detail::advance_detached(std::move(s), step, 0, cut, "unroll");
  EnableGradGuard recording;
  for (std::int64_t k = cut; k < options.steps; ++k) s = detail::checked_step(step, s, k, true, "unroll");
  return s;
}

}  // namespace metagrad
