// SPDX-License-Identifier: MIT
// Adam and AdamW with PyTorch's update rule (amsgrad not supported). At step t:
//   g = g + weight_decay * p                       (Adam: L2 penalty folded into the gradient)
//   p = p * (1 - lr * weight_decay)                (AdamW: decoupled decay, instead of the line above)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The coefficients are computed once per step in double and rounded to the element type by
// adam_coefficients(), which the differentiable Adam shares, so both round identically.
#pragma once
#include <cmath>
#include <vector>

#include "metagrad/backend/optim.hpp"
#include "metagrad/optim/optimizer.hpp"

namespace metagrad {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  /// AdamW: decay the parameters directly instead of adding weight_decay * p to the gradient.
  bool decoupled_weight_decay = false;
};

namespace detail {
inline void check_adam_options(const AdamOptions& o, const char* op) {
  check_hyperparameter(std::isfinite(o.lr) && o.lr >= 0, op, "lr", o.lr, "finite and >= 0");
  check_hyperparameter(o.beta1 >= 0 && o.beta1 < 1, op, "beta1", o.beta1, "in [0, 1)");
  check_hyperparameter(o.beta2 >= 0 && o.beta2 < 1, op, "beta2", o.beta2, "in [0, 1)");
  check_hyperparameter(std::isfinite(o.eps) && o.eps >= 0, op, "eps", o.eps, "finite and >= 0");
  check_hyperparameter(std::isfinite(o.weight_decay) && o.weight_decay >= 0, op, "weight_decay", o.weight_decay,
                       "finite and >= 0");
}

/// The coefficients of step t (t >= 1) at learning rate lr.
template <Floating T>
backend::AdamCoefficients<T> adam_coefficients(const AdamOptions& o, double lr, std::int64_t t) {
  const double bias_correction1 = 1.0 - std::pow(o.beta1, static_cast<double>(t));
  const double bias_correction2 = 1.0 - std::pow(o.beta2, static_cast<double>(t));
  return {.weight_decay = static_cast<T>(o.decoupled_weight_decay ? 0.0 : o.weight_decay),
          .decay_keep = static_cast<T>(1.0 - lr * o.weight_decay),
          .decoupled = o.decoupled_weight_decay && o.weight_decay != 0,
          .beta1 = static_cast<T>(o.beta1),
          .one_minus_beta1 = static_cast<T>(1.0 - o.beta1),
          .beta2 = static_cast<T>(o.beta2),
          .one_minus_beta2 = static_cast<T>(1.0 - o.beta2),
          .inv_sqrt_bias_correction2 = static_cast<T>(1.0 / std::sqrt(bias_correction2)),
          .eps = static_cast<T>(o.eps),
          .step_size = static_cast<T>(lr / bias_correction1)};
}
}  // namespace detail

template <Floating T>
class Adam : public Optimizer<T> {
 public:
  /// options.lr is the initial learning rate; set_lr() (or a scheduler) changes it later.
  explicit Adam(std::vector<Tensor<T>> params, AdamOptions options = {})
      : Adam("Adam", std::move(params), options) {}

  const AdamOptions& options() const { return options_; }

 protected:
  Adam(const char* name, std::vector<Tensor<T>> params, AdamOptions options)
      : Optimizer<T>(name, std::move(params), options.lr, {"exp_avg", "exp_avg_sq"}, true), options_(options) {
    detail::check_adam_options(options_, name);
  }

 private:
  void update(std::size_t i, Tensor<T>& p, const Tensor<T>& g) override {
    Tensor<T>& m = this->buffer(i, 0);
    Tensor<T>& v = this->buffer(i, 1);
    if (!m.defined()) {
      m = zeros<T>(p.shape());
      v = zeros<T>(p.shape());
    }
    const auto c = detail::adam_coefficients<T>(options_, this->lr(), ++this->step_count(i));
    backend::adam_update(p, g, m, v, c);
  }

  AdamOptions options_;
};

/// Adam with decoupled weight decay (Loshchilov & Hutter); PyTorch's default weight_decay is 0.01.
template <Floating T>
class AdamW final : public Adam<T> {
 public:
  explicit AdamW(std::vector<Tensor<T>> params, AdamOptions options = {.weight_decay = 1e-2})
      : Adam<T>("AdamW", std::move(params), decoupled(options)) {}

 private:
  static AdamOptions decoupled(AdamOptions o) {
    o.decoupled_weight_decay = true;
    return o;
  }
};

}  // namespace metagrad
