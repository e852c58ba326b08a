// SPDX-License-Identifier: MIT
// Dropout: inverted dropout while training, the identity in evaluation. Each Dropout owns a
// Generator seeded from the one it is built with, so a model built from one seed drops the same
// units run after run, and no layer holds a reference to a generator that may be gone. Without a
// Generator the seed is drawn from default_generator(), so manual_seed fixes the masks too.
#pragma once

#include "metagrad/nn/module.hpp"
#include "metagrad/ops/dropout.hpp"

namespace metagrad::nn {

template <Floating T = float>
class Dropout final : public Layer<T> {
 public:
  Dropout(double p, Generator& gen) : p_(p), gen_(gen.engine()()) {
    check(p >= 0 && p < 1, "Dropout", "probability ", p, " is outside [0, 1)");
  }
  explicit Dropout(double p = 0.5) : Dropout(p, default_generator()) {}
  Tensor<T> forward(const Tensor<T>& x) override { return dropout(x, p_, this->is_training(), gen_); }

  double p() const { return p_; }
  /// The stream the masks are drawn from (reseed it to replay a run).
  Generator& generator() { return gen_; }

 private:
  double p_;
  Generator gen_;
};

}  // namespace metagrad::nn
