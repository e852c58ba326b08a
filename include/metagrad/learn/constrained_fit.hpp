// SPDX-License-Identifier: MIT
// Learning with explanation constraints (Pukdee et al., NeurIPS 2023): min_h L̂_lab(h) subject to
// E_unlab φ(h, x) ≤ α (learn/gradient_constraint.hpp), by one of
//   Unconstrained        L̂                                  (ERM: the explanations are ignored)
//   FixedPenalty         L̂ + λ·φ̂
//   AugmentedLagrangian  L̂ + μ·c + (ρ/2)·max(0, c)²,  c = φ̂ − α,  μ ← max(0, μ + ρ·c̄) every k steps
// through fit_constrained, or the variational method through fit_variational (its objective and
// update rule are on docs/explanation_constraints.md). φ̂ is the mean of φ over a fresh batch of the
// unlabelled points each step. The task loss is the caller's: a callable (model, step) -> scalar
// on the labelled data (a full batch for a handful of labels, a minibatch for thousands), so the
// same loop serves regression and classification. Both loops validate every `eval_every` steps
// on the caller's score and leave the model in its best state, as learn/trainer.hpp does.
#pragma once
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/core/error.hpp"
#include "metagrad/core/random.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/learn/gradient_constraint.hpp"
#include "metagrad/learn/snapshot.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad::learn {

/// ERM: the task loss alone (the constraint is still measured, never trained on).
template <Floating T>
class Unconstrained {
 public:
  static constexpr bool uses_constraint = false;
  Tensor<T> objective(const Tensor<T>& task, const Tensor<T>& /*phi*/, double /*alpha*/) const { return task; }
  void after_step(double /*violation*/) {}
  std::string name() const { return "erm"; }
  nlohmann::ordered_json setting() const { return nlohmann::ordered_json::object(); }
};

/// A fixed penalty λ·φ̂ (RRR's shape, with φ in place of the masked gradient norm).
template <Floating T>
class FixedPenalty {
 public:
  static constexpr bool uses_constraint = true;
  explicit FixedPenalty(double lambda) : lambda_(lambda) {
    check(std::isfinite(lambda) && lambda >= 0, "FixedPenalty", "lambda must be finite and >= 0, got ", lambda);
  }
  Tensor<T> objective(const Tensor<T>& task, const Tensor<T>& phi, double /*alpha*/) const {
    return add(task, mul(phi, T(lambda_)));
  }
  void after_step(double /*violation*/) {}
  std::string name() const { return "penalty"; }
  nlohmann::ordered_json setting() const { return {{"lambda", lambda_}}; }

 private:
  double lambda_;
};

struct AugmentedLagrangianOptions {
  double rho = 1;       ///< the quadratic weight ρ, also the multiplier's step
  double mu = 0;        ///< the initial multiplier μ ≥ 0
  int dual_every = 20;  ///< steps between multiplier updates; c̄ is the mean violation over them
  double rho_growth = 1;  ///< ρ ← ρ·growth after each multiplier update (1: fixed ρ)
  double rho_max = 1e6;
};

/// The augmented Lagrangian of the inequality constraint E φ ≤ α: L̂ + μ·c + (ρ/2)·max(0, c)² with
/// c = φ̂ − α, and dual ascent μ ← max(0, μ + ρ·c̄) every dual_every steps, c̄ the mean of the
/// violations the steps saw. At a KKT point (c = 0, μ = μ*) the gradient is ∇L̂ + μ*∇c = 0.
template <Floating T>
class AugmentedLagrangian {
 public:
  static constexpr bool uses_constraint = true;
  explicit AugmentedLagrangian(AugmentedLagrangianOptions options = {}) : o_(options), mu_(options.mu), rho_(options.rho) {
    constexpr const char* op = "AugmentedLagrangian";
    check(std::isfinite(o_.rho) && o_.rho > 0, op, "rho must be > 0, got ", o_.rho);
    check(std::isfinite(o_.mu) && o_.mu >= 0, op, "the initial multiplier mu must be >= 0, got ", o_.mu);
    check(o_.dual_every > 0, op, "dual_every must be > 0, got ", o_.dual_every);
    check(o_.rho_growth >= 1, op, "rho_growth must be >= 1, got ", o_.rho_growth);
  }
  Tensor<T> objective(const Tensor<T>& task, const Tensor<T>& phi, double alpha) const {
    const auto c = sub(phi, T(alpha));
    return add(add(task, mul(c, T(mu_))), mul(square(relu(c)), T(rho_ / 2)));
  }
  /// Called after every step with that step's violation c = φ̂ − α.
  void after_step(double violation) {
    sum_ += violation;
    if (++seen_ < o_.dual_every) return;
    mu_ = std::max(0.0, mu_ + rho_ * sum_ / seen_);
    rho_ = std::min(rho_ * o_.rho_growth, o_.rho_max);
    sum_ = 0;
    seen_ = 0;
  }
  double mu() const { return mu_; }
  double rho() const { return rho_; }
  std::string name() const { return "augmented_lagrangian"; }
  nlohmann::ordered_json setting() const {
    return {{"rho", o_.rho}, {"dual_every", o_.dual_every}, {"rho_growth", o_.rho_growth}};
  }

 private:
  AugmentedLagrangianOptions o_;
  double mu_, rho_;
  double sum_ = 0;
  int seen_ = 0;
};

/// A method for fit_constrained.
template <class Method, class T>
concept ConstraintMethod = requires(Method& m, const Tensor<T>& t, double v) {
  { m.objective(t, t, v) } -> std::convertible_to<Tensor<T>>;
  m.after_step(v);
  { Method::uses_constraint } -> std::convertible_to<bool>;
};

struct ConstrainedFitOptions {
  int steps = 1000;
  /// Validate every this many steps (and after the last); the best state is kept.
  int eval_every = 25;
  /// The validation score is a loss (lower is better); false: higher is better (an accuracy).
  bool minimize_score = true;
  /// Seeds the unlabelled batches.
  std::uint64_t seed = 0;
  bool progress = false;
  std::string label{};
};

struct ConstrainedFitHistory {
  int best_step = 0;  ///< the step whose state the model holds (0: the initial state)
  double best_score = std::nan("");
  std::vector<std::pair<int, double>> scores;  ///< (step, validation score)
  double elapsed_s = 0;
  std::string stop_reason = "steps";  ///< or "non-finite loss"
};

namespace detail {

/// Validation bookkeeping shared by both loops: score the model, keep the best state, print.
template <Floating T, class M, class Validate>
class BestKeeper {
 public:
  BestKeeper(M& model, Validate& validate, const ConstrainedFitOptions& o, const char* op)
      : model_(model), validate_(validate), o_(o), best_(module_of(model), op) {}

  void evaluate(int step, ConstrainedFitHistory& h, const std::string& extra = {}) {
    const double score = static_cast<double>(validate_(model_));
    h.scores.emplace_back(step, score);
    const bool better = std::isfinite(score) && (std::isnan(h.best_score) || (o_.minimize_score ? score < h.best_score
                                                                                                 : score > h.best_score));
    if (better) {
      best_.take(module_of(model_));
      h.best_step = step;
      h.best_score = score;
    }
    if (o_.progress) {
      const double s = seconds(), eta = step > 0 ? s / step * (o_.steps - step) : 0.0;
      std::printf("%s%sstep %5d/%d  valid %.5f%s%s  %.1f s  ETA %.0f s\n", o_.label.c_str(), o_.label.empty() ? "" : "  ",
                  step, o_.steps, score, better ? " *" : "", extra.c_str(), s, eta);
      std::fflush(stdout);
    }
  }
  void restore(ConstrainedFitHistory& h) {
    module_of(model_).load_state_dict(best_.named());
    h.elapsed_s = seconds();
  }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  M& model_;
  Validate& validate_;
  const ConstrainedFitOptions& o_;
  StateSnapshot<T> best_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

inline void check_fit_options(const ConstrainedFitOptions& o, const char* op) {
  check(o.steps > 0, op, "steps must be > 0, got ", o.steps);
  check(o.eval_every > 0, op, "eval_every must be > 0, got ", o.eval_every);
}

template <Floating T>
double scalar_of(const Tensor<T>& t, const char* op, const char* what) {
  check(t.defined() && t.numel() == 1, op, what, " must be a scalar, got ", t.defined() ? t.shape() : Shape{});
  return static_cast<double>(t.item());
}

}  // namespace detail

/// Trains `model` with `optimizer` on the method's objective for options.steps steps: each step
/// the task loss task_loss(model, step) and, if the method uses it, the estimate φ̂ of E φ on a
/// fresh unlabelled batch. `validate(model)` scores the model every eval_every steps; the model
/// ends in its best-scoring state (the initial one is scored first, as step 0).
template <Floating T, class M, class Opt, class Method, class TaskLoss, class Validate>
  requires ConstraintMethod<Method, T> && std::invocable<TaskLoss&, M&, int> && std::invocable<Validate&, M&>
ConstrainedFitHistory fit_constrained(M& model, Opt& optimizer, Method& method, TaskLoss&& task_loss,
                                      const GradientConstraint<T>& constraint, Validate&& validate,
                                      const ConstrainedFitOptions& options = {}) {
  constexpr const char* op = "fit_constrained";
  detail::check_fit_options(options, op);
  Generator gen(options.seed);
  ConstrainedFitHistory h;
  detail::BestKeeper<T, M, Validate> keeper(model, validate, options, op);
  keeper.evaluate(0, h);
  for (int step = 1; step <= options.steps; ++step) {
    optimizer.zero_grad();
    const Tensor<T> task = task_loss(model, step);
    Tensor<T> phi = Method::uses_constraint ? constraint.estimate(model, gen) : zeros<T>(Shape{});
    const Tensor<T> objective = method.objective(task, phi, constraint.alpha());
    const double value = detail::scalar_of(objective, op, "the objective");
    if (!std::isfinite(value)) {
      h.stop_reason = "non-finite loss";
      break;
    }
    backward(objective);
    optimizer.step();
    if constexpr (Method::uses_constraint) method.after_step(static_cast<double>(phi.item()) - constraint.alpha());
    if (step % options.eval_every == 0 || step == options.steps) keeper.evaluate(step, h);
  }
  optimizer.zero_grad();
  keeper.restore(h);
  return h;
}

struct VariationalOptions {
  double lambda = 1;  ///< the constraint's weight in the projection step
  double gamma = 1;   ///< how strongly h and q are pulled together
  int h_steps = 1;    ///< optimizer steps on h per round
  int q_steps = 1;    ///< optimizer steps on q per round
};

/// The variational method's objective, over a label-fitting model h and its projection q onto the
/// constraint set:  J(h, q) = L̂_lab(h) + γ·D(h, q) + λ·φ̂(q),  D = mean over unlabelled points of
/// ‖h(x) − q(x)‖², minimised by block-coordinate descent: h-steps on L̂(h) + γ·D(h, q̄) (q fixed),
/// then q-steps on γ·D(h̄, q) + λ·φ̂(q) (h fixed). q is the model returned.
template <Floating T>
class Variational {
 public:
  explicit Variational(VariationalOptions options = {}) : o_(options) {
    constexpr const char* op = "Variational";
    check(std::isfinite(o_.lambda) && o_.lambda >= 0, op, "lambda must be finite and >= 0, got ", o_.lambda);
    check(std::isfinite(o_.gamma) && o_.gamma > 0, op, "gamma must be > 0, got ", o_.gamma);
    check(o_.h_steps > 0 && o_.q_steps > 0, op, "h_steps and q_steps must be > 0, got ", o_.h_steps, " and ", o_.q_steps);
  }

  /// D(h, q) on points x: mean over the points of ‖h(x) − q(x)‖² (summed over outputs).
  template <class H, class Q>
  static Tensor<T> distance(H& h, Q& q, const Tensor<T>& x) {
    const auto diff = sub(metagrad::detail::run_model<T>(h, x), metagrad::detail::run_model<T>(q, x));
    return div(sum(square(diff)), T(static_cast<double>(x.size(0))));
  }
  /// The h-step's loss: L̂(h) + γ·D(h, q̄), with q's outputs detached.
  template <class H, class Q>
  Tensor<T> h_objective(const Tensor<T>& task, H& h, Q& q, const Tensor<T>& x) const {
    Tensor<T> target;
    {
      NoGradGuard no_grad;
      target = metagrad::detail::run_model<T>(q, x);
    }
    const auto diff = sub(metagrad::detail::run_model<T>(h, x), target);
    return add(task, mul(sum(square(diff)), T(o_.gamma / static_cast<double>(x.size(0)))));
  }
  /// The q-step's loss: γ·D(h̄, q) + λ·φ̂(q) on an unlabelled batch, with h's outputs detached.
  template <class H, class Q>
  Tensor<T> q_objective(H& h, Q& q, const GradientConstraint<T>& constraint, const Explanations<T>& batch) const {
    Tensor<T> target;
    {
      NoGradGuard no_grad;
      target = metagrad::detail::run_model<T>(h, batch.x);
    }
    const auto diff = sub(metagrad::detail::run_model<T>(q, batch.x), target);
    const auto d = mul(sum(square(diff)), T(o_.gamma / static_cast<double>(batch.x.size(0))));
    return add(d, mul(constraint.estimate(q, batch), T(o_.lambda)));
  }
  /// J(h, q) on a labelled task loss of h and an unlabelled batch (for tests and reports).
  template <class H, class Q>
  Tensor<T> objective(const Tensor<T>& task, H& h, Q& q, const GradientConstraint<T>& constraint,
                      const Explanations<T>& batch) const {
    return add(add(task, mul(distance(h, q, batch.x), T(o_.gamma))), mul(constraint.estimate(q, batch), T(o_.lambda)));
  }

  const VariationalOptions& options() const { return o_; }
  std::string name() const { return "variational"; }
  nlohmann::ordered_json setting() const {
    return {{"lambda", o_.lambda}, {"gamma", o_.gamma}, {"h_steps", o_.h_steps}, {"q_steps", o_.q_steps}};
  }

 private:
  VariationalOptions o_;
};

/// Trains q (returned through its best validation state) and the auxiliary h by the variational
/// method, options.steps rounds of h_steps h-updates then q_steps q-updates. task_loss(h, round) is
/// the labelled loss; validate(q) the score.
template <Floating T, class Q, class H, class OptQ, class OptH, class TaskLoss, class Validate>
  requires std::invocable<TaskLoss&, H&, int> && std::invocable<Validate&, Q&>
ConstrainedFitHistory fit_variational(Q& q, H& h, OptQ& optimizer_q, OptH& optimizer_h, const Variational<T>& method,
                                      TaskLoss&& task_loss, const GradientConstraint<T>& constraint,
                                      Validate&& validate, const ConstrainedFitOptions& options = {}) {
  constexpr const char* op = "fit_variational";
  detail::check_fit_options(options, op);
  Generator gen(options.seed);
  ConstrainedFitHistory h_out;
  detail::BestKeeper<T, Q, Validate> keeper(q, validate, options, op);
  keeper.evaluate(0, h_out);
  const auto& o = method.options();
  for (int round = 1; round <= options.steps && h_out.stop_reason == "steps"; ++round) {
    for (int s = 0; s < o.h_steps; ++s) {
      optimizer_h.zero_grad();
      const auto batch = constraint.sample(gen);
      const auto loss = method.h_objective(task_loss(h, round), h, q, batch.x);
      if (!std::isfinite(detail::scalar_of(loss, op, "the h-step loss"))) {
        h_out.stop_reason = "non-finite loss";
        break;
      }
      backward(loss);
      optimizer_h.step();
    }
    for (int s = 0; s < o.q_steps && h_out.stop_reason == "steps"; ++s) {
      optimizer_q.zero_grad();
      const auto loss = method.q_objective(h, q, constraint, constraint.sample(gen));
      if (!std::isfinite(detail::scalar_of(loss, op, "the q-step loss"))) {
        h_out.stop_reason = "non-finite loss";
        break;
      }
      backward(loss);
      optimizer_q.step();
    }
    if (round % options.eval_every == 0 || round == options.steps) keeper.evaluate(round, h_out);
  }
  optimizer_h.zero_grad();
  optimizer_q.zero_grad();
  keeper.restore(h_out);
  return h_out;
}

}  // namespace metagrad::learn
