// SPDX-License-Identifier: MIT
// IBP-Ex + RRR (Heo et al. 2023; robust_mlx IBP_trainer.py with ibp_rrr > 0): IBP-Ex's loss plus
// an L1 penalty on the masked input gradient of the logit sum, summed over the batch:
//   L = α·CE(f(x), y) + (1 − α)·CE(z_worst, y) + w·Σ_n |m ⊙ ∂(Σ_k z_nk)/∂x_n|₁.
// The gradient term is outside the α mix, as in the code. |·| has a kink at 0 where abs's
// derivative is taken as 0 (sign), so examples with an empty mask contribute nothing.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "metagrad/learn/ibp_ex.hpp"
#include "metagrad/learn/input_gradient.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad::learn {

struct IbpExRrrOptions {
  IbpExOptions ibp = {};
  double weight = 1;  ///< robust_mlx ibp_rrr
};

/// Σ_n |m ⊙ ∂(Σ_k z_nk)/∂x_n|₁, attached to the parameters.
template <Floating T, class M>
Tensor<T> l1_gradient_penalty(M& model, const Batch<T>& batch) {
  detail::check_masked_batch(batch, "l1_gradient_penalty");
  const auto ig = input_gradient(model, batch.x, GradientOf::LogitSum, true, "l1_gradient_penalty");
  return sum(abs(mul(ig.grad, batch.mask.detach())));
}

template <Floating T>
class IbpExRrr {
 public:
  explicit IbpExRrr(IbpExRrrOptions options = {}) : ibp_(options.ibp), weight_(options.weight) {
    check(weight_ >= 0, "IbpExRrr", "weight must be >= 0, got ", weight_);
  }

  template <class M>
  Tensor<T> operator()(M& model, const Batch<T>& batch) const {
    detail::check_masked_batch(batch, "IbpExRrr");
    // One forward pass serves the clean CE and the input gradient.
    const auto ig = input_gradient(model, batch.x, GradientOf::LogitSum, true, "IbpExRrr");
    detail::check_labels(ig.logits, batch.y, "IbpExRrr");
    const auto ce = cross_entropy(ig.logits, batch.y);
    const auto robust = ibp_worst_case_loss(model, batch, ibp_.eps(), "IbpExRrr");
    const auto penalty = sum(abs(mul(ig.grad, batch.mask.detach())));
    const double a = ibp_.alpha();
    return add(add(mul(ce, T(a)), mul(robust, T(1 - a))), mul(penalty, T(weight_)));
  }
  void on_epoch(int epoch, int epochs) { ibp_.on_epoch(epoch, epochs); }
  void on_step(double progress) { ibp_.on_step(progress); }
  double eps() const { return ibp_.eps(); }
  double alpha() const { return ibp_.alpha(); }
  double weight() const { return weight_; }

  std::string name() const { return "ibp_ex_rrr"; }
  nlohmann::ordered_json setting() const {
    auto s = ibp_.setting();
    s["weight"] = weight_;
    return s;
  }

 private:
  IbpEx<T> ibp_;
  double weight_;
};

}  // namespace metagrad::learn
