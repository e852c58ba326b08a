// SPDX-License-Identifier: MIT
// Differentiable optimizers for unrolled inner loops (the `higher` / TorchOpt idea). step(params,
// grads) returns NEW parameter tensors computed with ops, so they stay on the graph: a loss of the
// updated parameters differentiates back through every update to the initial parameters and to
// the learning rate, which may be a Tensor. Momentum buffers and Adam's moments are graph tensors.
//
// first_order (FOMAML): everything derived from the gradients (the gradient itself, coupled weight
// decay, the clipping factor, momentum and moments) is a constant; the parameters stay on the
// graph, so p' = p - lr * d has dp'/dp = I and dp'/dlr = -d. Coupled weight decay is part of the
// gradient of the regularised loss, so it is a constant too; AdamW's decoupled decay is not a
// gradient and keeps its factor (1 - lr * weight_decay). With a scalar lr a first-order step equals
// the in-place SGD / Adam step bit for bit: both use the same coefficients and the same roundings.
//
// An optimizer keeps the graph of its state between steps: call reset() before the next unroll.
#pragma once
#include <cmath>
#include <vector>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/nn/named_tensors.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/optim/adam.hpp"
#include "metagrad/optim/clip.hpp"
#include "metagrad/optim/sgd.hpp"

namespace metagrad {

struct DifferentiableOptions {
  /// Treat the gradients and everything derived from them as constants (first-order MAML).
  bool first_order = false;
  /// > 0: scale the gradients so their global L2 norm is at most this before the update.
  double max_grad_norm = 0;
};

namespace detail {
/// sqrt whose derivative is taken as 0 where the value is 0, instead of +inf. Adam's second moment
/// is exactly 0 wherever a gradient component is (a dead ReLU, an unused parameter), and there the
/// plain rule turns a hypergradient into 0 * inf = NaN. sqrt(v) = |g| * const there, so 0 is the
/// symmetric (and finite-difference) derivative. The masks are constants of the backward pass.
/// The forward is std::sqrt, correctly rounded as the in-place Adam's: Eigen's packet sqrt is an
/// approximation under EIGEN_FAST_MATH (its default) on AVX-512.
template <Floating T>
Tensor<T> sqrt_zero_safe(const Tensor<T>& x) {
  return record("sqrt_zero_safe", backend::exact_sqrt(x), {x},
                [](const Tensor<T>& g, BackwardContext<T>& c) {
                  const Tensor<T>& y = c.output();
                  const auto positive = gt(y.detach(), T(0));
                  const auto zero = eq(y.detach(), T(0));
                  c.set(0, mul(div(mul(g, T(0.5)), add(y, zero)), positive));
                },
                [](const TangentContext<T>& c) {
                  const Tensor<T>& y = c.output();
                  const auto positive = gt(y.detach(), T(0));
                  const auto zero = eq(y.detach(), T(0));
                  return mul(div(mul(c.tangent(0), T(0.5)), add(y, zero)), positive);
                });
}
}  // namespace detail

template <Floating T>
class DifferentiableOptimizer {
 public:
  virtual ~DifferentiableOptimizer() = default;

  /// New parameters after one update with `grads` (one per parameter). An undefined gradient
  /// leaves its parameter (returned as is) and its state unchanged.
  std::vector<Tensor<T>> step(const std::vector<Tensor<T>>& params, const std::vector<Tensor<T>>& grads) {
    check(!params.empty(), name_, "step: no parameters");
    check(params.size() == grads.size(), name_, "step: ", params.size(), " parameters but ", grads.size(),
          " gradients");
    if (size_ == 0) {
      size_ = params.size();
      resize_state(size_);
    }
    check(params.size() == size_, name_, "step: ", params.size(), " parameters, but the state was built for ", size_,
          "; call reset() to start over with other parameters");
    check(lrs_.size() <= 1 || lrs_.size() == size_, name_, "step: ", lrs_.size(), " learning rates for ", size_,
          " parameters");
    std::vector<Tensor<T>> gs = grads;
    for (std::size_t i = 0; i < size_; ++i) {
      check(params[i].defined(), name_, "step: parameter ", i, " is an undefined tensor");
      if (!gs[i].defined()) continue;
      check(gs[i].shape() == params[i].shape(), name_, "step: gradient of shape ", gs[i].shape(), " for parameter ",
            i, " of shape ", params[i].shape());
      if (!lrs_.empty())
        check(broadcasts_to(lr_of(i).shape(), params[i].shape()), name_, "step: learning rate of shape ",
              lr_of(i).shape(), " does not broadcast to parameter ", i, " of shape ", params[i].shape());
      if (options_.first_order) gs[i] = gs[i].detach();
    }
    if (options_.max_grad_norm > 0) gs = clip_grad_norm(gs, options_.max_grad_norm);
    std::vector<Tensor<T>> out(size_);
    for (std::size_t i = 0; i < size_; ++i) out[i] = gs[i].defined() ? update(i, params[i], gs[i]) : params[i];
    return out;
  }

  /// One step on the gradients of `loss` (computed with create_graph unless first_order; a
  /// parameter the loss does not use keeps its value).
  std::vector<Tensor<T>> step(const std::vector<Tensor<T>>& params, const Tensor<T>& loss) {
    GradOptions<T> o;
    o.create_graph = !options_.first_order;
    o.allow_unused = true;
    return step(params, grad<T>(loss, params, o));
  }

  /// step() on named parameters (as functional_call takes them); the names are kept.
  NamedTensors<T> step(const NamedTensors<T>& params, const Tensor<T>& loss) {
    const auto updated = step(params.tensors(), loss);
    NamedTensors<T> out;
    for (std::size_t i = 0; i < updated.size(); ++i) out.insert(params[i].first, updated[i]);
    return out;
  }

  /// A plain learning rate (what LRScheduler sets).
  void set_lr(double lr) {
    detail::check_hyperparameter(std::isfinite(lr) && lr >= 0, name_, "lr", lr, "finite and >= 0");
    lr_ = lr;
    lrs_.clear();
  }
  /// One learning-rate tensor for every parameter (a scalar, or broadcastable to each parameter):
  /// hypergradients with respect to it flow through every step.
  void set_lr(Tensor<T> lr) {
    check(lr.defined(), name_, "set_lr: undefined tensor");
    lrs_ = {std::move(lr)};
  }
  /// One learning-rate tensor per parameter, e.g. per-element rates as in Meta-SGD.
  void set_lr(std::vector<Tensor<T>> lrs) {
    check(!lrs.empty(), name_, "set_lr: no learning rates");
    for (std::size_t i = 0; i < lrs.size(); ++i) check(lrs[i].defined(), name_, "set_lr: learning rate ", i, " is undefined");
    lrs_ = std::move(lrs);
  }
  /// The plain learning rate (meaningless while a tensor learning rate is set).
  double lr() const { return lr_; }
  bool has_tensor_lr() const { return !lrs_.empty(); }
  const DifferentiableOptions& mode() const { return options_; }
  bool first_order() const { return options_.first_order; }

  /// Forgets the state (and with it the graph it holds); the next step may take other parameters.
  void reset() {
    size_ = 0;
    resize_state(0);
  }

 protected:
  DifferentiableOptimizer(const char* name, double lr, DifferentiableOptions options) : name_(name), options_(options) {
    check(options_.max_grad_norm >= 0 && !std::isnan(options_.max_grad_norm), name_, "max_grad_norm ",
          options_.max_grad_norm, " must be >= 0");
    set_lr(lr);
  }

  /// The new value of parameter i after a step with (clipped, possibly detached) gradient g.
  virtual Tensor<T> update(std::size_t i, const Tensor<T>& p, const Tensor<T>& g) = 0;
  /// Makes room for the state of n parameters (0: drop it).
  virtual void resize_state(std::size_t n) = 0;

  /// The learning-rate tensor of parameter i (only when has_tensor_lr()).
  const Tensor<T>& lr_of(std::size_t i) const { return lrs_.size() == 1 ? lrs_[0] : lrs_[i]; }
  /// What coupled weight decay multiplies: p itself, or a constant copy in first-order mode.
  Tensor<T> decay_input(const Tensor<T>& p) const { return options_.first_order ? p.detach() : p; }

 private:
  /// Whether `from` broadcasts to exactly `to` (so lr * update keeps the parameter's shape).
  static bool broadcasts_to(const Shape& from, const Shape& to) {
    if (from.rank() > to.rank()) return false;
    for (int i = 1; i <= from.rank(); ++i) {
      const std::int64_t f = from[from.rank() - i], t = to[to.rank() - i];
      if (f != t && f != 1) return false;
    }
    return true;
  }

  const char* name_;
  DifferentiableOptions options_;
  double lr_ = 0;
  std::vector<Tensor<T>> lrs_;
  std::size_t size_ = 0;
};

/// SGD as a differentiable update (momentum, dampening, Nesterov, coupled weight decay).
template <Floating T>
class DifferentiableSGD final : public DifferentiableOptimizer<T> {
 public:
  explicit DifferentiableSGD(SGDOptions options = {}, DifferentiableOptions mode = {})
      : DifferentiableOptimizer<T>("DifferentiableSGD", options.lr, mode), options_(options) {
    detail::check_sgd_options(options_, "DifferentiableSGD");
  }
  const SGDOptions& options() const { return options_; }
  /// The momentum buffers (undefined before a parameter's first step).
  const std::vector<Tensor<T>>& momentum_buffers() const { return buffers_; }

 private:
  Tensor<T> update(std::size_t i, const Tensor<T>& p, const Tensor<T>& g) override {
    const bool momentum = options_.momentum != 0;
    const auto c = detail::sgd_coefficients<T>(options_, this->lr(), momentum && !buffers_[i].defined());
    Tensor<T> d = g;
    if (options_.weight_decay != 0) d = add(d, mul(this->decay_input(p), c.weight_decay));
    if (momentum) {
      Tensor<T>& b = buffers_[i];
      b = c.first_step ? d : add(mul(b, c.momentum), options_.dampening != 0 ? mul(d, c.dampening_keep) : d);
      d = c.nesterov ? add(d, mul(b, c.momentum)) : b;
    }
    return sub(p, this->has_tensor_lr() ? mul(d, this->lr_of(i)) : mul(d, c.lr));
  }
  void resize_state(std::size_t n) override { buffers_.assign(n, Tensor<T>()); }

  SGDOptions options_;
  std::vector<Tensor<T>> buffers_;
};

/// Adam / AdamW as a differentiable update (bias correction, coupled or decoupled weight decay).
template <Floating T>
class DifferentiableAdam final : public DifferentiableOptimizer<T> {
 public:
  explicit DifferentiableAdam(AdamOptions options = {}, DifferentiableOptions mode = {})
      : DifferentiableOptimizer<T>("DifferentiableAdam", options.lr, mode), options_(options) {
    detail::check_adam_options(options_, "DifferentiableAdam");
  }
  const AdamOptions& options() const { return options_; }
  /// First and second moment estimates (undefined before a parameter's first step).
  const std::vector<Tensor<T>>& exp_avg() const { return m_; }
  const std::vector<Tensor<T>>& exp_avg_sq() const { return v_; }

 private:
  Tensor<T> update(std::size_t i, const Tensor<T>& p, const Tensor<T>& g) override {
    const std::int64_t t = ++steps_[i];
    const auto c = detail::adam_coefficients<T>(options_, this->lr(), t);
    const bool tensor_lr = this->has_tensor_lr();
    Tensor<T> gi = g;
    if (c.weight_decay != T(0)) gi = add(gi, mul(this->decay_input(p), c.weight_decay));
    Tensor<T> pi = p;
    if (c.decoupled)
      pi = tensor_lr ? mul(p, sub(T(1), mul(this->lr_of(i), static_cast<T>(options_.weight_decay))))
                     : mul(p, c.decay_keep);
    if (!m_[i].defined()) {
      m_[i] = zeros<T>(p.shape());
      v_[i] = zeros<T>(p.shape());
    }
    m_[i] = add(mul(m_[i], c.beta1), mul(gi, c.one_minus_beta1));
    v_[i] = add(mul(v_[i], c.beta2), mul(mul(gi, gi), c.one_minus_beta2));
    const Tensor<T> denom = add(mul(detail::sqrt_zero_safe(v_[i]), c.inv_sqrt_bias_correction2), c.eps);
    const Tensor<T> ratio = div(m_[i], denom);
    if (!tensor_lr) return sub(pi, mul(ratio, c.step_size));
    const double bias_correction1 = 1.0 - std::pow(options_.beta1, static_cast<double>(t));
    return sub(pi, mul(ratio, mul(this->lr_of(i), static_cast<T>(1.0 / bias_correction1))));
  }
  void resize_state(std::size_t n) override {
    m_.assign(n, Tensor<T>());
    v_.assign(n, Tensor<T>());
    steps_.assign(n, 0);
  }

  AdamOptions options_;
  std::vector<Tensor<T>> m_, v_;
  std::vector<std::int64_t> steps_;
};

}  // namespace metagrad
