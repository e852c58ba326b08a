// SPDX-License-Identifier: MIT
// A small meta-learning problem in double shared by the meta tests: a tanh MLP 5-6-3 trained for
// K steps on per-step batches, an outer cross-entropy on a validation batch, and central finite
// differences of the outer loss to check hypergradients against.
#pragma once
#include <functional>
#include <vector>

#include "metagrad/core/creation.hpp"
#include "metagrad/meta/unroll.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad::testing {

using D = double;
using Tensors = std::vector<Tensor<D>>;

struct MetaProblem {
  static constexpr std::int64_t features = 5, hidden = 6, classes = 3, batch = 8, val = 10;
  Tensors params;               // W1, b1, W2, b2
  std::vector<Tensor<D>> xs;    // one inner batch per step
  std::vector<IndexTensor> ys;
  Tensor<D> x_val;
  IndexTensor y_val;

  explicit MetaProblem(std::int64_t steps, std::uint64_t seed = 7) {
    Generator gen(seed);
    params = {randn<D>({hidden, features}, gen, 0.0, 0.5), randn<D>({hidden}, gen, 0.0, 0.1),
              randn<D>({classes, hidden}, gen, 0.0, 0.5), randn<D>({classes}, gen, 0.0, 0.1)};
    for (std::int64_t k = 0; k < steps; ++k) {
      xs.push_back(randn<D>({batch, features}, gen));
      ys.push_back(randint(0, classes, {batch}, gen));
    }
    x_val = randn<D>({val, features}, gen);
    y_val = randint(0, classes, {val}, gen);
  }

  static Tensor<D> logits(const Tensors& p, const Tensor<D>& x) {
    return linear(tanh(linear(x, p[0], p[1])), p[2], p[3]);
  }
  /// Per-example inner losses [batch] at step k, of inputs optionally transformed first.
  Tensor<D> inner_losses(const Tensors& p, std::int64_t k) const {
    return cross_entropy(logits(p, xs[static_cast<std::size_t>(k)]), ys[static_cast<std::size_t>(k)], Reduction::None);
  }
  Tensor<D> outer(const Tensors& p) const { return cross_entropy(logits(p, x_val), y_val); }
};

/// Copies of `ts` (fresh storage, no history), so perturbing one leaves the others alone.
inline Tensors clone(const Tensors& ts) {
  Tensors out;
  for (const auto& t : ts) out.push_back(from_vector<D>(t.to_vector(), t.shape()));
  return out;
}

/// Central differences of f(hyper) w.r.t. every element of every hyperparameter.
inline Tensors finite_differences(const std::function<double(const Tensors&)>& f, const Tensors& hyper,
                                  double eps = 1e-6) {
  Tensors out;
  for (std::size_t i = 0; i < hyper.size(); ++i) {
    auto g = Tensor<D>::empty(hyper[i].shape());
    for (std::int64_t e = 0; e < hyper[i].numel(); ++e) {
      auto plus = clone(hyper), minus = clone(hyper);
      plus[i].fresh_data()[e] += eps;
      minus[i].fresh_data()[e] -= eps;
      g.fresh_data()[e] = (f(plus) - f(minus)) / (2 * eps);
    }
    out.push_back(g);
  }
  return out;
}

/// Largest |a - b| / (atol + |b|) over all elements: <= 1 means within tolerance.
inline double worst_ratio(const Tensors& a, const Tensors& b, double atol) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::int64_t e = 0; e < a[i].numel(); ++e)
      worst = std::max(worst, std::abs(a[i].data()[e] - b[i].data()[e]) / (atol + std::abs(b[i].data()[e])));
  return worst;
}

inline double max_abs_diff(const Tensors& a, const Tensors& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::int64_t e = 0; e < a[i].numel(); ++e) worst = std::max(worst, std::abs(a[i].data()[e] - b[i].data()[e]));
  return worst;
}

}  // namespace metagrad::testing
