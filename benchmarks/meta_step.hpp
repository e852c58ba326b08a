// SPDX-License-Identifier: MIT
// The meta-step workload (meta_step_k1, _k5, _k20), mirrored exactly by compare_pytorch.py:
//   student: MLP 784-128-10 with ReLU, PyTorch's default Linear init (seed 0);
//   explainer: φ ∈ R^784 (randn * 0.1, seed 2); per-feature weights w = 784 · softmax(φ);
//   inner loss at step k: CE(student_θ(x_k ⊙ w), y_k) on batch k of 64;
//   K inner SGD steps θ ← θ - 0.1 ∇θ, differentiable (create_graph);
//   outer loss: CE(student_θK(x_val), y_val) on a validation batch of 64;
//   timed: one outer gradient d outer / d φ (through all K steps).
// Data: x ~ N(0, 1), y uniform in [0, 10), seed 1, drawn as K inner batches then the validation one.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "metagrad/meta/hypergradient.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/softmax.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad::bench {

struct MetaStep {
  static constexpr std::int64_t in = 784, hidden = 128, classes = 10, batch = 64;
  static constexpr float inner_lr = 0.1f;
  std::int64_t steps;
  std::vector<Tensor<float>> student;  // W1, b1, W2, b2 (leaves without grad: the unroll starts from them)
  Tensor<float> phi;                   // the explainer's parameters, requires grad
  std::vector<Tensor<float>> xs;
  std::vector<IndexTensor> ys;
  Tensor<float> x_val;
  IndexTensor y_val;

  explicit MetaStep(std::int64_t k) : steps(k) {
    Generator gen(0);
    auto uniform = [&](const Shape& shape, std::int64_t fan_in) {
      const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
      return rand<float>(shape, gen, -bound, bound);
    };
    student = {uniform({hidden, in}, in), uniform({hidden}, in), uniform({classes, hidden}, hidden),
               uniform({classes}, hidden)};
    Generator phi_gen(2);
    phi = mul(randn<float>({in}, phi_gen), 0.1f).requires_grad_();
    Generator data(1);
    for (std::int64_t i = 0; i < k; ++i) {
      xs.push_back(randn<float>({batch, in}, data));
      ys.push_back(randint(0, classes, {batch}, data));
    }
    x_val = randn<float>({batch, in}, data);
    y_val = randint(0, classes, {batch}, data);
  }

  static Tensor<float> logits(const std::vector<Tensor<float>>& p, const Tensor<float>& x) {
    return linear(relu(linear(x, p[0], p[1])), p[2], p[3]);
  }

  /// The inner SGD step for explainer weights `w` (a graph node of φ).
  StepFn<float> step(const Tensor<float>& w) const {
    return sgd_step<float>(
        [this, w](const std::vector<Tensor<float>>& p, std::int64_t k) {
          const auto i = static_cast<std::size_t>(k);
          return cross_entropy(logits(p, mul(xs[i], w)), ys[i]);
        },
        inner_lr);
  }
  OuterLoss<float> outer() const {
    return [this](const std::vector<Tensor<float>>& p) { return cross_entropy(logits(p, x_val), y_val); };
  }
  /// 784 · softmax(φ), on the graph of φ.
  Tensor<float> feature_weights() const { return mul(softmax(phi, 0), static_cast<float>(in)); }

  /// d outer / d φ by the plain unroll (the timed workload).
  Tensor<float> hypergradient() const {
    EnableGradGuard recording;
    const auto w = feature_weights();
    return unrolled_hypergradient<float>(student, step(w), outer(), {phi}, {.steps = steps}).grads[0];
  }
};

}  // namespace metagrad::bench
