// SPDX-License-Identifier: MIT
// SGD with momentum, dampening, Nesterov momentum and (coupled) weight decay, with PyTorch's
// update rule:
//   d = g + weight_decay * p
//   b = d                                  (first step)
//   b = momentum * b + (1 - dampening) * d (later steps)
//   d = nesterov ? d + momentum * b : b
//   p = p - lr * d
// The coefficients are computed once per step in the element type by sgd_coefficients(), which the
// differentiable SGD shares, so both round identically.
#pragma once
#include <cmath>
#include <vector>

#include "metagrad/backend/optim.hpp"
#include "metagrad/optim/optimizer.hpp"

namespace metagrad {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  bool nesterov = false;
  double weight_decay = 0;
};

namespace detail {
inline void check_sgd_options(const SGDOptions& o, const char* op) {
  check_hyperparameter(std::isfinite(o.lr) && o.lr >= 0, op, "lr", o.lr, "finite and >= 0");
  check_hyperparameter(std::isfinite(o.momentum) && o.momentum >= 0, op, "momentum", o.momentum, "finite and >= 0");
  check_hyperparameter(std::isfinite(o.dampening), op, "dampening", o.dampening, "finite");
  check_hyperparameter(std::isfinite(o.weight_decay) && o.weight_decay >= 0, op, "weight_decay", o.weight_decay,
                       "finite and >= 0");
  check(!o.nesterov || (o.momentum > 0 && o.dampening == 0), op,
        "Nesterov momentum requires momentum > 0 and dampening = 0 (got momentum ", o.momentum, ", dampening ",
        o.dampening, ")");
}

template <Floating T>
backend::SgdCoefficients<T> sgd_coefficients(const SGDOptions& o, double lr, bool first_step) {
  return {.lr = static_cast<T>(lr),
          .weight_decay = static_cast<T>(o.weight_decay),
          .momentum = static_cast<T>(o.momentum),
          .dampening_keep = static_cast<T>(1.0 - o.dampening),
          .nesterov = o.nesterov,
          .first_step = first_step};
}
}  // namespace detail

template <Floating T>
class SGD final : public Optimizer<T> {
 public:
  /// options.lr is the initial learning rate; set_lr() (or a scheduler) changes it later.
  explicit SGD(std::vector<Tensor<T>> params, SGDOptions options = {})
      : Optimizer<T>("SGD", std::move(params), options.lr,
                     options.momentum != 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{},
                     false),
        options_(options) {
    detail::check_sgd_options(options_, "SGD");
  }

  const SGDOptions& options() const { return options_; }

 private:
  void update(std::size_t i, Tensor<T>& p, const Tensor<T>& g) override {
    Tensor<T>* buf = nullptr;
    bool first = false;
    if (options_.momentum != 0) {
      buf = &this->buffer(i, 0);
      first = !buf->defined();
      if (first) *buf = Tensor<T>::empty(p.shape());
    }
    const auto c = detail::sgd_coefficients<T>(options_, this->lr(), first);
    backend::sgd_update(p, g, buf, first, c);
  }

  SGDOptions options_;
};

}  // namespace metagrad
