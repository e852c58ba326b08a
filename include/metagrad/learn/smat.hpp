// SPDX-License-Identifier: MIT
// The SMaT meta step (Fernandes et al. 2022, explainer_train_step of CoderPat/learning-scaffold):
// the student takes its real update on a training batch, on the graph,
//   θ'(φ_T) = θ − SGD-step(clip(∇_θ L_S(θ; φ_T)))        (global-norm clip, weight decay)
// and the teacher explainer's parameters φ_T follow the gradient of the simulation loss of θ' on a
// validation batch, without explanations:
//   φ_T ← AdamW(φ_T, ∇_{φ_T} CE(S_{θ'}(x_val), argmax T(x_val))).
// The gradient reaches φ_T only through ∇_θ L_S, so it is second order. K > 1 unrolls K student
// steps (on K training batches); the implicit route (meta/implicit.hpp, "not used in the paper")
// treats θ as a stationary point of L_S instead of differentiating the step.
//
// With K = 1 the unrolled step *is* the student's real update at the current φ_T, so the step
// returns it and the caller copies it into the student instead of computing it again.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "metagrad/learn/simulation.hpp"
#include "metagrad/meta/hypergradient.hpp"
#include "metagrad/meta/implicit.hpp"
#include "metagrad/meta/unroll.hpp"
#include "metagrad/optim/adam.hpp"
#include "metagrad/optim/differentiable.hpp"

namespace metagrad::learn {

enum class MetaRoute { unrolled, implicit };

struct SmatOptions {
  double beta = 5.0;             // kld_coeff for SMaT
  double student_lr = 5e-3;      // the student's SGD
  double max_grad_norm = 5.0;    // its global-norm clip
  double weight_decay = 0.01;    // its (coupled) weight decay
  std::int64_t unroll_steps = 1; // K; the paper's meta_interval is 1
  MetaRoute route = MetaRoute::unrolled;
  ImplicitOptions implicit{};    // for MetaRoute::implicit
};

inline void check_smat_options(const SmatOptions& o, const char* op) {
  check(o.beta >= 0 && o.student_lr > 0 && o.max_grad_norm >= 0 && o.weight_decay >= 0, op,
        "needs beta >= 0, student_lr > 0, max_grad_norm >= 0 and weight_decay >= 0, got ", o.beta, ", ",
        o.student_lr, ", ", o.max_grad_norm, " and ", o.weight_decay);
  check(o.unroll_steps >= 1, op, "unroll_steps must be >= 1, got ", o.unroll_steps);
}

template <Floating T>
struct MetaStep {
  T outer_loss = 0;                    // CE of the stepped student on the validation batch
  T inner_loss = 0;                    // the student loss of the first step, before it
  std::vector<Tensor<T>> meta_grads;   // d outer / d φ_T, one per teacher-explainer parameter
  std::vector<Tensor<T>> first_step;   // the student's parameters after its first step (unrolled route)
};

/// The meta-gradient of one SMaT step. `student` is a Student; `train_batches` (K of them, each a
/// batch whose labels are the teacher's predictions) drive the unrolled steps, and
/// `teacher_explanation(k)` gives the teacher's explanation logits of batch k as a function of
/// `teacher_params` (φ_T, which must require grad). The outer loss is the simulation CE on
/// `valid_batch`. The student's parameters are not changed.
template <Floating T, class S, class Batch>
MetaStep<T> smat_meta_gradient(S& student, std::span<const Batch> train_batches,
                               const std::function<Tensor<T>(std::int64_t k)>& teacher_explanation,
                               const Batch& valid_batch, const std::vector<Tensor<T>>& teacher_params,
                               const SmatOptions& options) {
  constexpr const char* op = "smat_meta_gradient";
  check_smat_options(options, op);
  const auto k_steps = options.route == MetaRoute::implicit ? std::int64_t{1} : options.unroll_steps;
  check(static_cast<std::int64_t>(train_batches.size()) == k_steps, op, train_batches.size(),
        " training batches for ", k_steps, " unrolled steps");
  check(!teacher_params.empty(), op, "no teacher-explainer parameters to learn");
  T inner_loss = 0;
  InnerLoss<T> inner = [&](const std::vector<Tensor<T>>& params, std::int64_t k) {
    const auto& batch = train_batches[static_cast<std::size_t>(k)];
    auto loss = simulation_loss(student(std::span<const Tensor<T>>(params), batch), batch.labels,
                                teacher_explanation(k), options.beta);
    if (k == 0) inner_loss = loss.item();
    return loss;
  };
  OuterLoss<T> outer = [&](const std::vector<Tensor<T>>& params) {
    return cross_entropy(student(std::span<const Tensor<T>>(params), valid_batch).logits, valid_batch.labels);
  };
  const auto theta = student.parameters();
  MetaStep<T> out;
  if (options.route == MetaRoute::implicit) {
    const auto h = implicit_hypergradient<T>(
        theta, [&](const std::vector<Tensor<T>>& p) { return inner(p, 0); }, outer, teacher_params, options.implicit);
    out.outer_loss = h.outer_loss;
    out.inner_loss = inner_loss;
    out.meta_grads = h.grads;
    return out;
  }
  DifferentiableSGD<T> sgd({.lr = options.student_lr, .weight_decay = options.weight_decay},
                           {.max_grad_norm = options.max_grad_norm});
  const StepFn<T> inner_step = optimizer_step<T>(inner, sgd);
  // Records the first step's result on its way through: the student's real update.
  const StepFn<T> step = [&](const std::vector<Tensor<T>>& state, std::int64_t k, bool create_graph) {
    auto next = inner_step(state, k, create_graph);
    if (k == 0)
      for (const auto& t : next) out.first_step.push_back(t.detach());
    return next;
  };
  // θ enters as fresh leaves: the meta-gradient is w.r.t. φ_T only, and the module's own
  // parameters keep no graph of it.
  std::vector<Tensor<T>> start;
  for (const auto& t : theta) start.push_back(t.detach());
  const auto h = unrolled_hypergradient<T>(start, step, outer, teacher_params, {.steps = k_steps});
  out.outer_loss = h.outer_loss;
  out.inner_loss = inner_loss;
  out.meta_grads = h.grads;
  return out;
}

/// Copies `values` into `params` (same order and shapes): the student takes the step the meta
/// step already computed.
template <Floating T>
void assign_parameters(const std::vector<Tensor<T>>& params, const std::vector<Tensor<T>>& values) {
  check(params.size() == values.size(), "assign_parameters", values.size(), " values for ", params.size(),
        " parameters");
  for (std::size_t i = 0; i < params.size(); ++i) {
    check(params[i].shape() == values[i].shape(), "assign_parameters", "value ", values[i].shape(),
          " for parameter ", i, " of shape ", params[i].shape());
    Tensor<T> p = params[i];
    std::copy_n(values[i].data(), values[i].numel(), p.mutable_data());
  }
}

/// Hands meta-gradients to an in-place optimizer (AdamW on φ_T) and steps it.
template <Floating T>
void apply_meta_gradients(Optimizer<T>& optimizer, const std::vector<Tensor<T>>& params,
                          const std::vector<Tensor<T>>& grads) {
  check(params.size() == grads.size(), "apply_meta_gradients", grads.size(), " gradients for ", params.size(),
        " parameters");
  optimizer.zero_grad();
  for (std::size_t i = 0; i < params.size(); ++i) {
    Tensor<T> p = params[i];
    p.set_grad(grads[i]);
  }
  optimizer.step();
  optimizer.zero_grad();
}

}  // namespace metagrad::learn
