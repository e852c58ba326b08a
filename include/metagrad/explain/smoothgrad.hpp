// SPDX-License-Identifier: MIT
// SmoothGrad (Smilkov et al. 2017): the input gradient averaged over noisy copies x + N(0, σ²).
// Averaging removes the high-frequency part of a ReLU net's gradient that makes plain saliency
// maps speckled. Noisy copies of all examples go through the model in chunks of max_batch rows;
// the noise comes from a generator seeded by `seed`, so a call is reproducible.
#pragma once
#include <algorithm>
#include <cstdint>

#include "metagrad/core/creation.hpp"
#include "metagrad/core/random.hpp"
#include "metagrad/explain/explainer.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/shape.hpp"

namespace metagrad {

struct SmoothGrad {
  std::int64_t samples = 16;
  /// Noise standard deviation, in input units.
  double sigma = 0.15;
  std::int64_t max_batch = 256;
  std::uint64_t seed = 0;
  /// Multiply the averaged gradient by x (SmoothGrad on gradient × input).
  bool times_input = false;

  template <Floating T, Model<T> M>
  Tensor<T> operator()(M& model, const Tensor<T>& x, const IndexTensor& target = {},
                       const ExplainOptions& options = {}) const {
    const char* op = "SmoothGrad";
    check(samples >= 1 && max_batch >= 1 && sigma >= 0, op, "needs samples >= 1, max_batch >= 1 and sigma >= 0, got ",
          samples, ", ", max_batch, " and ", sigma);
    const auto y = detail::resolve_target(model, x, target, op);
    const std::int64_t n = x.size(0);
    auto with_leading = [&](std::initializer_list<std::int64_t> lead) {
      Shape s(lead);
      for (int d = 1; d < x.dim(); ++d) s.push_back(x.size(d));
      return s;
    };
    Generator gen(seed);
    const std::int64_t per_call = std::clamp<std::int64_t>(max_batch / n, 1, samples);
    const auto x0 = unsqueeze(x.detach(), 0);
    Tensor<T> total;
    for (std::int64_t s0 = 0; s0 < samples; s0 += per_call) {
      const std::int64_t k = std::min(per_call, samples - s0);
      const auto noise = randn<T>(with_leading({k, n}), gen, T(0), static_cast<T>(sigma));
      const auto points = reshape(add(x0, noise), with_leading({k * n}));
      const auto targets = reshape(repeat(reshape(y, Shape{1, n}), {k, 1}), Shape{k * n});
      const auto summed = sum(reshape(detail::input_gradient(model, points, targets, options, op), with_leading({k, n})), {0});
      total = total.defined() ? add(total, summed) : summed;
    }
    const auto mean_grad = total * (T(1) / static_cast<T>(samples));
    return times_input ? mul(mean_grad, x) : mean_grad;
  }
};

}  // namespace metagrad
