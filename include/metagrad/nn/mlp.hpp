// SPDX-License-Identifier: MIT
// MLP: Linear layers of the given sizes with an activation between them (none after the last), as
// a Sequential, so parameters are named "0.weight", "2.weight", ... and layers can be walked.
// Without a Generator the weights come from default_generator().
#pragma once
#include <cstdint>
#include <vector>

#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/sequential.hpp"

namespace metagrad::nn {

template <Floating T = float>
class MLP final : public Sequential<T> {
 public:
  /// sizes = {in, hidden..., out}; at least two entries.
  MLP(const std::vector<std::int64_t>& sizes, Generator& gen, Activation activation = Activation::relu) {
    check(sizes.size() >= 2, "MLP", "needs at least an input and an output size, got ", sizes.size(), " sizes");
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
      if (i > 0) this->push_back(make_activation<T>(activation));
      this->template emplace_back<Linear<T>>(sizes[i], sizes[i + 1], gen);
    }
  }
  explicit MLP(const std::vector<std::int64_t>& sizes, Activation activation = Activation::relu)
      : MLP(sizes, default_generator(), activation) {}
};

}  // namespace metagrad::nn
