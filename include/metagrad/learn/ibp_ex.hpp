// SPDX-License-Identifier: MIT
// IBP-Ex (Heo et al. 2023, robust_mlx IBP_trainer.py): the features a human marked irrelevant may
// move anywhere in [x − ε·m, x + ε·m]; interval bound propagation bounds the logits over that box,
// and the loss asks the model to classify correctly even for the worst logits in it:
//   L = α·CE(f(x), y) + (1 − α)·CE(z_worst, y),  z_worst = lower bound for y, upper for the rest.
// Only examples with a non-empty mask enter the robust term (mean over them; 0 when there are
// none), as in robust_mlx's `active_mask`. Schedules, as the code runs them (training_epoch_end):
// after every epoch α −= 0.5·α₀/E and ε += ε_max/E, starting from (α₀, ε_start). So before epoch e
// ε = ε_start + e·ε_max/E and α = α₀·(1 − e/(2E)); nothing is clamped: α stays above α₀/2, and ε
// reaches ε_start + ε_max·(E−1)/E, which is above ε_max when ε_start > 0 (the (1→2) config).
// Ramp::PerStep moves the same line every optimizer step instead (on_step(progress), progress =
// fraction of training done), as IBP training usually ramps ε (Gowal et al. 2018): without the
// jump from ε_start to ε_start + ε_max/E at the first epoch boundary, which on short runs makes
// the worst-case term dwarf the clean one before the model can shrink its weights on the mask.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metagrad/explain/ibp.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/indexing.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad::learn {

enum class Ramp { PerEpoch, PerStep };

inline const char* to_string(Ramp r) { return r == Ramp::PerEpoch ? "per_epoch" : "per_step"; }

struct IbpExOptions {
  double eps_start = 0;  ///< ε in the first epoch (robust_mlx ibp_start_EPSILON), in input units
  double eps_max = 1;    ///< ε grows by eps_max / E per epoch (ibp_EPSILON)
  double alpha0 = 1;     ///< weight of the clean CE in the first epoch (ibp_ALPHA); shrinks by α₀/(2E) per epoch
  Ramp ramp = Ramp::PerEpoch;  ///< robust_mlx's per-epoch steps, or the same line moved every step
};

namespace detail {

/// Indices of the examples whose mask is non-empty.
template <Floating T>
IndexTensor active_rows(const Tensor<T>& mask) {
  const std::int64_t n = mask.size(0), per = mask.numel() / n;
  const auto flat = flatten(mask.detach(), 1);
  std::vector<std::int64_t> rows;
  const T* m = flat.data();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < per; ++j)
      if (m[i * per + j] != T(0)) {
        rows.push_back(i);
        break;
      }
  return from_vector<std::int64_t>(rows, Shape{static_cast<std::int64_t>(rows.size())});
}

}  // namespace detail

/// Logit bounds over the batch's box [x − ε·m, x + ε·m] (all examples).
template <Floating T, class M>
Bounds<T> ibp_logit_bounds(M& model, const Batch<T>& batch, double eps) {
  detail::check_masked_batch(batch, "ibp_logit_bounds");
  check(eps >= 0, "ibp_logit_bounds", "eps must be >= 0, got ", eps);
  const auto r = mul(batch.mask.detach(), T(eps));
  const auto x = batch.x.detach();
  return interval_bounds(detail::module_of(model), sub(x, r), add(x, r));
}

/// CE of the worst-case logits over the box, averaged over the examples with a non-empty mask.
template <Floating T, class M>
Tensor<T> ibp_worst_case_loss(M& model, const Batch<T>& batch, double eps, const char* op = "ibp_worst_case_loss") {
  detail::check_masked_batch(batch, op);
  check(eps >= 0, op, "eps must be >= 0, got ", eps);
  const auto rows = detail::active_rows(batch.mask);
  if (rows.numel() == 0) return scalar_tensor<T>(T(0));
  const bool all = rows.numel() == batch.x.size(0);
  const auto x = all ? batch.x.detach() : index_select(batch.x.detach(), 0, rows);
  const auto m = all ? batch.mask.detach() : index_select(batch.mask.detach(), 0, rows);
  const auto y = all ? batch.y : detail::select_labels(batch.y, rows);
  const auto r = mul(m, T(eps));
  const auto b = interval_bounds(detail::module_of(model), sub(x, r), add(x, r));
  detail::check_labels(b.lower, y, op);
  return cross_entropy(worst_case_logits(b, y), y);
}

template <Floating T>
class IbpEx {
 public:
  explicit IbpEx(IbpExOptions options = {}) : o_(options), eps_(options.eps_start), alpha_(options.alpha0) {
    check(o_.eps_start >= 0 && o_.eps_max >= 0, "IbpEx", "eps_start and eps_max must be >= 0, got ", o_.eps_start,
          " and ", o_.eps_max);
    check(o_.alpha0 >= 0 && o_.alpha0 <= 1, "IbpEx", "alpha0 must be in [0, 1], got ", o_.alpha0);
  }

  template <class M>
  Tensor<T> operator()(M& model, const Batch<T>& batch) const {
    detail::check_masked_batch(batch, "IbpEx");
    const auto ce = cross_entropy(detail::logits_of(model, batch.x, batch.y, "IbpEx"), batch.y);
    const auto robust = ibp_worst_case_loss(model, batch, eps_, "IbpEx");
    return add(mul(ce, T(alpha_)), mul(robust, T(1 - alpha_)));
  }

  /// Sets ε and α for epoch `epoch` of `epochs` (stateless: calling it twice changes nothing).
  void on_epoch(int epoch, int epochs) {
    check(epochs > 0 && epoch >= 0 && epoch < epochs, "IbpEx", "epoch ", epoch, " is not in [0, ", epochs, ")");
    if (o_.ramp == Ramp::PerEpoch) set_progress(static_cast<double>(epoch) / epochs);
  }
  /// With Ramp::PerStep: sets ε and α for `progress` (the fraction of training done, in [0, 1]).
  void on_step(double progress) {
    check(progress >= 0 && progress <= 1, "IbpEx", "progress ", progress, " is not in [0, 1]");
    if (o_.ramp == Ramp::PerStep) set_progress(progress);
  }
  double eps() const { return eps_; }
  double alpha() const { return alpha_; }
  const IbpExOptions& options() const { return o_; }

  std::string name() const { return "ibp_ex"; }
  nlohmann::ordered_json setting() const {
    return {{"eps_start", o_.eps_start}, {"eps_max", o_.eps_max}, {"alpha0", o_.alpha0}, {"ramp", to_string(o_.ramp)}};
  }

 private:
  void set_progress(double progress) {
    eps_ = o_.eps_start + progress * o_.eps_max;
    alpha_ = o_.alpha0 * (1 - 0.5 * progress);
  }

  IbpExOptions o_;
  double eps_, alpha_;
};

}  // namespace metagrad::learn
