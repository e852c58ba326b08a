// SPDX-License-Identifier: MIT
// PGD-Ex (Heo et al. 2023, robust_mlx PGD_trainer.py): an adversary moves the irrelevant features
// within [x − ε·m, x + ε·m] by T signed-gradient ascent steps on the cross entropy, and the model
// is trained on both: L = CE(f(x), y) + CE(f(x_adv), y). The public code never wires pgd_eps and
// pgd_iters into its argparse; here both are options. The adversary's steps are not on the
// parameters' graph (x_adv is a constant of the outer loss, as with torch's detach_()).
#pragma once
#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/binary.hpp"
#include "metagrad/ops/compare.hpp"
#include "metagrad/ops/loss.hpp"

namespace metagrad::learn {

struct PgdExOptions {
  double eps = 1;        ///< the box half-width on masked features, in input units
  int steps = 10;        ///< T
  double step_size = 0;  ///< per-step move; 0 means ε / T (robust_mlx)
};

/// x_adv after `steps` steps of x ← clip_[x−εm, x+εm](x + step·sign ∇_x CE(f(x), y)), started at
/// x. Detached; features with m = 0 are returned bit-identical to x (the box is a point there).
template <Floating T, class M>
Tensor<T> pgd_attack(M& model, const Batch<T>& batch, double eps, int steps, double step_size = 0,
                     const char* op = "pgd_attack") {
  detail::check_masked_batch(batch, op);
  check(eps >= 0, op, "eps must be >= 0, got ", eps);
  check(steps >= 0, op, "steps must be >= 0, got ", steps);
  check(step_size >= 0, op, "step_size must be >= 0, got ", step_size);
  const double step = step_size > 0 ? step_size : (steps > 0 ? eps / steps : 0.0);
  const auto x = batch.x.detach();
  const auto r = mul(batch.mask.detach(), T(eps));
  const auto lo = sub(x, r), hi = add(x, r);
  EnableGradGuard grad_on;
  Tensor<T> adv = x;
  for (int s = 0; s < steps; ++s) {
    Tensor<T> var = adv.detach().requires_grad_();
    const auto loss = cross_entropy(detail::logits_of(model, var, batch.y, op), batch.y);
    const auto g = grad(loss, var);
    NoGradGuard no_grad;
    adv = minimum(maximum(add(var.detach(), mul(sign(g), T(step))), lo), hi);
  }
  return adv.detach();
}

template <Floating T>
class PgdEx {
 public:
  explicit PgdEx(PgdExOptions options = {}) : o_(options) {
    check(o_.eps >= 0, "PgdEx", "eps must be >= 0, got ", o_.eps);
    check(o_.steps >= 0, "PgdEx", "steps must be >= 0, got ", o_.steps);
    check(o_.step_size >= 0, "PgdEx", "step_size must be >= 0, got ", o_.step_size);
  }

  template <class M>
  Tensor<T> operator()(M& model, const Batch<T>& batch) const {
    detail::check_masked_batch(batch, "PgdEx");
    const auto ce = cross_entropy(detail::logits_of(model, batch.x, batch.y, "PgdEx"), batch.y);
    const auto adv = pgd_attack(model, batch, o_.eps, o_.steps, o_.step_size, "PgdEx");
    return add(ce, cross_entropy(detail::logits_of(model, adv, batch.y, "PgdEx"), batch.y));
  }
  void on_epoch(int /*epoch*/, int /*epochs*/) {}
  std::string name() const { return "pgd_ex"; }
  nlohmann::ordered_json setting() const {
    const double step = o_.step_size > 0 ? o_.step_size : o_.eps / std::max(o_.steps, 1);
    return {{"eps", o_.eps}, {"steps", o_.steps}, {"step_size", step}};
  }
  const PgdExOptions& options() const { return o_; }

 private:
  PgdExOptions o_;
};

}  // namespace metagrad::learn
