// SPDX-License-Identifier: MIT
// Inverted dropout: while training, each element is kept with probability 1 - p and scaled by
// 1 / (1 - p), so the expected value is unchanged and evaluation needs no rescaling. The mask is
// drawn from the given Generator (one uniform per element, in order, as bernoulli() draws), so a
// seed reproduces it exactly; it is a constant of the backward rule: the gradient is g * mask.
#pragma once
#include "metagrad/backend/random.hpp"
#include "metagrad/core/random.hpp"
#include "metagrad/ops/arithmetic.hpp"

namespace metagrad {

/// x * mask with mask_i = 1 / (1 - p) with probability 1 - p, else 0. Identity when p == 0 or
/// when not training. p must be in [0, 1).
template <Floating T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training = true, Generator& gen = default_generator()) {
  check(p >= 0 && p < 1, "dropout", "probability ", p, " is outside [0, 1) for input of shape ", x.shape());
  if (!training || p == 0) return x;
  const double keep = 1 - p;
  const T scale = static_cast<T>(1 / keep);
  const Tensor<T> mask = backend::dropout_mask(x, keep, scale, gen);
  Tensor<T> out = backend::mul(x, mask, x.shape());
  return record(
      "dropout", std::move(out), {x}, [mask](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, mul(g, mask)); },
      [mask](const TangentContext<T>& c) { return mul(c.tangent(0), mask); });
}

}  // namespace metagrad
