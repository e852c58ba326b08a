// SPDX-License-Identifier: MIT
// check_layer_gradients: gradcheck (double, orders 1..order) of a layer's forward as a function of
// its input and all its parameters, the parameters fed in through functional_call.
#pragma once
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/nn/functional_call.hpp"

namespace metagrad::testing {

inline void check_layer_gradients(nn::Layer<double>& layer, const Tensor<double>& x, int order = 2,
                                  GradcheckOptions options = {}) {
  std::vector<Tensor<double>> inputs{x};
  for (const auto& p : layer.parameters()) inputs.push_back(p.detach());
  options.order = order;
  const auto result = gradcheck(
      [&layer](const std::vector<Tensor<double>>& a) {
        const std::vector<Tensor<double>> params(a.begin() + 1, a.end());
        return functional_call(layer, params, a[0]);
      },
      inputs, options);
  CHECK_MESSAGE(result.ok, result.report);
}

}  // namespace metagrad::testing
