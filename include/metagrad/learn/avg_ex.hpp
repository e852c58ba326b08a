// SPDX-License-Identifier: MIT
// Avg-Ex (Heo et al. 2023; robust_mlx CoRM_trainer.py): Gaussian noise on the irrelevant features
// only, so the model learns to ignore them on average: L = CE(f(x), y) + (1/S) Σ_s CE(f(x + m⊙ε_s), y),
// ε_s ~ N(0, σ²) per element. With S = 1 this is robust_mlx's loss; S > 1 averages more draws.
#pragma once
#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "metagrad/core/random.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/loss.hpp"

namespace metagrad::learn {

struct AvgExOptions {
  double sigma = 1;        ///< noise std (robust_mlx corm_EPSILON), in input units
  int samples = 1;         ///< S
  std::uint64_t seed = 0;  ///< seeds the loss's own generator, so runs repeat
};

/// x + m ⊙ N(0, σ²): the masked features perturbed, every other one bit-identical to x.
template <Floating T>
Tensor<T> masked_noise(const Batch<T>& batch, double sigma, Generator& gen, const char* op = "masked_noise") {
  detail::check_masked_batch(batch, op);
  check(sigma >= 0, op, "sigma must be >= 0, got ", sigma);
  return add(batch.x.detach(), mul(randn<T>(batch.x.shape(), gen, T(0), T(sigma)), batch.mask.detach()));
}

template <Floating T>
class AvgEx {
 public:
  explicit AvgEx(AvgExOptions options = {}) : o_(options), gen_(options.seed) {
    check(o_.sigma >= 0, "AvgEx", "sigma must be >= 0, got ", o_.sigma);
    check(o_.samples >= 1, "AvgEx", "samples must be >= 1, got ", o_.samples);
  }

  template <class M>
  Tensor<T> operator()(M& model, const Batch<T>& batch) {
    detail::check_masked_batch(batch, "AvgEx");
    auto loss = cross_entropy(detail::logits_of(model, batch.x, batch.y, "AvgEx"), batch.y);
    for (int s = 0; s < o_.samples; ++s) {
      const auto noisy = masked_noise(batch, o_.sigma, gen_, "AvgEx");
      const auto ce = cross_entropy(detail::logits_of(model, noisy, batch.y, "AvgEx"), batch.y);
      loss = add(loss, mul(ce, T(1.0 / o_.samples)));
    }
    return loss;
  }
  void on_epoch(int /*epoch*/, int /*epochs*/) {}
  std::string name() const { return "avg_ex"; }
  nlohmann::ordered_json setting() const { return {{"sigma", o_.sigma}, {"samples", o_.samples}, {"seed", o_.seed}}; }
  const AvgExOptions& options() const { return o_; }
  Generator& generator() { return gen_; }

 private:
  AvgExOptions o_;
  Generator gen_;
};

}  // namespace metagrad::learn
