// SPDX-License-Identifier: MIT
// Device-neutral descriptors shared by the backend facade and every device's kernels, so an op
// names what a kernel computes without naming the device that computes it.
#pragma once

namespace metagrad::backend {

/// The comparison a mask kernel evaluates.
enum class Compare { eq, ne, lt, le, gt, ge };

/// The element-wise term of a pointwise loss (ops/loss.hpp).
enum class PointwiseLoss { mse, l1, kl_div, bce_with_logits };

/// SGD coefficients, already in the element type so the loop and the ops use identical values.
template <class T>
struct SgdCoefficients {
  T lr = 0;
  T weight_decay = 0;   // coupled: added to the gradient as weight_decay * p
  T momentum = 0;
  T dampening_keep = 1;  // 1 - dampening
  bool nesterov = false;
  bool first_step = false;  // the momentum buffer starts as a copy of the first direction
};

/// Adam/AdamW coefficients for one step t (bias corrections folded in).
template <class T>
struct AdamCoefficients {
  T weight_decay = 0;  // coupled (Adam's L2): added to the gradient
  T decay_keep = 1;    // decoupled (AdamW): p is first scaled by 1 - lr * weight_decay
  bool decoupled = false;
  T beta1 = 0, one_minus_beta1 = 0, beta2 = 0, one_minus_beta2 = 0;
  T inv_sqrt_bias_correction2 = 1;  // 1 / sqrt(1 - beta2^t)
  T eps = 0;
  T step_size = 0;  // lr / (1 - beta1^t)
};

}  // namespace metagrad::backend
