// SPDX-License-Identifier: MIT
// Linear: y = x Wᵀ + b over the last dim, W [out, in], initialised like PyTorch's default
// (Kaiming-uniform with a = √5, so W and b are uniform in ±1/√in). Without a Generator the
// parameters come from default_generator() (seeded by manual_seed), as torch.nn.Linear does;
// `nn::Linear fc(784, 256)` is a Linear<float>.
#pragma once
#include <cmath>
#include <cstdint>

#include "metagrad/nn/init.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/ops/linalg.hpp"

namespace metagrad::nn {

template <Floating T = float>
class Linear final : public Layer<T> {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, Generator& gen, bool with_bias = true) {
    check(in_features > 0 && out_features > 0, "Linear", "features must be positive, got ", in_features, " -> ",
          out_features);
    weight = Tensor<T>::empty(Shape{out_features, in_features});
    init::kaiming_uniform_(weight, gen, std::sqrt(5.0));
    this->register_parameter("weight", weight);
    if (with_bias) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
      bias = Tensor<T>::empty(Shape{out_features});
      init::uniform_(bias, gen, -bound, bound);
      this->register_parameter("bias", bias);
    }
  }

  explicit Linear(std::int64_t in_features, std::int64_t out_features, bool with_bias = true)
      : Linear(in_features, out_features, default_generator(), with_bias) {}

  Tensor<T> forward(const Tensor<T>& x) override { return linear(x, weight, bias); }

  std::int64_t in_features() const { return weight.size(1); }
  std::int64_t out_features() const { return weight.size(0); }

  Tensor<T> weight;  // [out, in]
  Tensor<T> bias;    // [out], undefined without bias
};

}  // namespace metagrad::nn
