// SPDX-License-Identifier: MIT
// Tiny models and batches shared by the learn/ loss tests (double, smooth activations so finite
// differences of input-gradient penalties are valid), and the parameters -> loss wrapper gradcheck needs.
#pragma once
#include <memory>
#include <vector>

#include "metagrad/core/creation.hpp"
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/functional_call.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/sequential.hpp"
#include "metagrad/optim/adam.hpp"

namespace metagrad::learn_test {

using Net = std::shared_ptr<nn::Sequential<double>>;
using V = std::vector<Tensor<double>>;

/// in -> hidden -> tanh -> classes.
inline Net tanh_mlp(std::int64_t in, std::int64_t hidden, std::int64_t classes, Generator& gen) {
  auto net = std::make_shared<nn::Sequential<double>>();
  net->emplace_back<nn::Linear<double>>(in, hidden, gen);
  net->emplace_back<nn::Tanh<double>>();
  net->emplace_back<nn::Linear<double>>(hidden, classes, gen);
  return net;
}

/// n examples of `in` features, random labels in [0, classes), a random 0/1 mask with at least one
/// 1 per example (the last feature).
inline learn::Batch<double> random_batch(std::int64_t n, std::int64_t in, std::int64_t classes, Generator& gen) {
  learn::Batch<double> b;
  b.x = randn<double>(Shape{n, in}, gen);
  std::vector<std::int64_t> y;
  for (std::int64_t i = 0; i < n; ++i) y.push_back(static_cast<std::int64_t>(gen.below(classes)));
  b.y = from_vector<std::int64_t>(y, Shape{n});
  auto m = bernoulli<double>(Shape{n, in}, 0.5, gen);
  for (std::int64_t i = 0; i < n; ++i) m.fresh_data()[i * in + in - 1] = 1;
  b.mask = m;
  return b;
}

/// A decoy task: features 0..in-2 carry the class weakly (noisy), the last feature is the label
/// itself (a perfect shortcut), and the mask marks the shortcut.
inline learn::Batch<double> decoy_batch(std::int64_t n, std::int64_t in, std::int64_t classes, Generator& gen,
                                       double signal = 1.0) {
  learn::Batch<double> b;
  std::vector<std::int64_t> y;
  auto x = randn<double>(Shape{n, in}, gen);
  auto m = zeros<double>(Shape{n, in});
  for (std::int64_t i = 0; i < n; ++i) {
    const auto c = static_cast<std::int64_t>(gen.below(classes));
    y.push_back(c);
    x.fresh_data()[i * in + c % (in - 1)] += signal;
    x.fresh_data()[i * in + in - 1] = 2.0 * static_cast<double>(c) - static_cast<double>(classes - 1);
    m.fresh_data()[i * in + in - 1] = 1;
  }
  b.x = x;
  b.y = from_vector<std::int64_t>(y, Shape{n});
  b.mask = m;
  return b;
}

/// The function parameters -> loss(net, batch), for gradcheck.
template <class Loss>
auto loss_of_params(Net net, Loss& loss, const learn::Batch<double>& batch) {
  return [net, &loss, batch](const V& p) {
    ParameterOverride<double> scope(*net, std::span<const Tensor<double>>(p));
    return loss(net, batch);
  };
}

/// `steps` Adam steps of loss on the batch.
template <class Loss>
void adam_steps(Net net, Loss& loss, const learn::Batch<double>& batch, int steps, double lr) {
  Adam<double> opt(net->parameters(), {.lr = lr});
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    backward(loss(net, batch));
    opt.step();
  }
}

inline bool all_finite(const Tensor<double>& t) {
  for (double v : t.values())
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace metagrad::learn_test
