// SPDX-License-Identifier: MIT
// "Right for the right reasons" (Ross et al. 2017): cross entropy plus a penalty on the input
// gradient over the features a human marked irrelevant, in two forms:
//  - LogitSumL2 (robust_mlx RRR_trainer.py, what Heo et al. 2023 compare against):
//      CE + λ Σ_n ‖m_n ⊙ ∂(Σ_k z_nk)/∂x_n‖₂, the per-example L2 norm unsquared, summed over the batch
//      (not averaged: `torch.norm(h*m, p=2, dim=(1,2,3)).sum()`), so λ's scale depends on the batch size;
//  - Ross (dtak/rrr): CE + λ Σ_n ‖m_n ⊙ ∂(Σ_k log p_nk)/∂x_n‖², squared, summed. Ross's λ₁‖θ‖²
//      term is weight decay and is left to the optimizer (SGD/AdamW weight_decay).
// The unsquared norm is not differentiable at 0 (an example whose mask is empty, or whose masked
// gradient vanishes): the norm op's backward returns the minimum-norm subgradient 0 there instead
// of 0/0, so such examples add nothing to the parameter gradient and never produce NaN.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "metagrad/learn/batch.hpp"
#include "metagrad/learn/input_gradient.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad::learn {

enum class RrrForm { LogitSumL2, Ross };

inline const char* to_string(RrrForm f) { return f == RrrForm::LogitSumL2 ? "logit_sum_l2" : "ross"; }

struct RrrOptions {
  double lambda = 1;
  RrrForm form = RrrForm::LogitSumL2;
};

namespace detail {

/// The RRR penalty from an already computed input gradient g (mask and g of x's shape).
template <Floating T>
Tensor<T> rrr_penalty_of(const Tensor<T>& g, const Tensor<T>& mask, RrrForm form) {
  const auto masked = flatten(mul(g, mask.detach()), 1);
  if (form == RrrForm::Ross) return sum(square(masked));
  return sum(norm(masked, 2, {1}));
}

}  // namespace detail

/// The penalty alone (for tests and metrics): Σ_n ‖m ⊙ ∂s/∂x‖₂ (LogitSumL2) or Σ_n ‖·‖² (Ross),
/// attached to the parameters.
template <Floating T, class M>
Tensor<T> rrr_penalty(M& model, const Batch<T>& batch, RrrForm form = RrrForm::LogitSumL2) {
  detail::check_masked_batch(batch, "rrr_penalty");
  const auto of = form == RrrForm::Ross ? GradientOf::LogProbSum : GradientOf::LogitSum;
  const auto ig = input_gradient(model, batch.x, of, true, "rrr_penalty");
  return detail::rrr_penalty_of(ig.grad, batch.mask, form);
}

template <Floating T>
class Rrr {
 public:
  explicit Rrr(RrrOptions options = {}) : o_(options) {
    check(o_.lambda >= 0, "Rrr", "lambda must be >= 0, got ", o_.lambda);
  }

  template <class M>
  Tensor<T> operator()(M& model, const Batch<T>& batch) const {
    detail::check_masked_batch(batch, "Rrr");
    const auto of = o_.form == RrrForm::Ross ? GradientOf::LogProbSum : GradientOf::LogitSum;
    const auto ig = input_gradient(model, batch.x, of, true, "Rrr");
    // The labels are checked against the logits here, before cross_entropy, so the error names Rrr.
    detail::check_labels(ig.logits, batch.y, "Rrr");
    const auto ce = cross_entropy(ig.logits, batch.y);
    return add(ce, mul(detail::rrr_penalty_of(ig.grad, batch.mask, o_.form), T(o_.lambda)));
  }
  void on_epoch(int /*epoch*/, int /*epochs*/) {}
  std::string name() const { return "rrr"; }
  nlohmann::ordered_json setting() const { return {{"lambda", o_.lambda}, {"form", to_string(o_.form)}}; }
  const RrrOptions& options() const { return o_; }

 private:
  RrrOptions o_;
};

}  // namespace metagrad::learn
