// SPDX-License-Identifier: MIT
// The benchmark workloads, defined once and used by both bench_workloads (Google Benchmark) and
// metagrad_workloads (the timing runner compare_pytorch.py calls). Shapes and math mirror the
// PyTorch versions in compare_pytorch.py exactly.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/core/creation.hpp"
#include "metagrad/learn/flint_networks.hpp"
#include "metagrad/ops/conv.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/pool.hpp"
#include "metagrad/ops/softmax.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/optim/adam.hpp"
#include "meta_step.hpp"

namespace metagrad::bench {

using T = float;
using Step = std::function<void()>;

/// PyTorch's default Linear init (uniform ±1/sqrt(fan_in)), as leaves that require grad.
inline Tensor<T> uniform_param(const Shape& shape, std::int64_t fan_in, Generator& gen) {
  const T bound = T(1) / std::sqrt(static_cast<T>(fan_in));
  return rand<T>(shape, gen, -bound, bound).requires_grad_();
}

inline std::vector<Tensor<T>> mlp_params() {
  Generator gen(0);
  const std::int64_t sizes[] = {784, 256, 256, 10};
  std::vector<Tensor<T>> params;
  for (int i = 0; i < 3; ++i) {
    params.push_back(uniform_param(Shape{sizes[i + 1], sizes[i]}, sizes[i], gen));
    params.push_back(uniform_param(Shape{sizes[i + 1]}, sizes[i], gen));
  }
  return params;
}

template <class Act>
Tensor<T> mlp_forward(const std::vector<Tensor<T>>& p, const Tensor<T>& x, Act act) {
  Tensor<T> h = x;
  for (std::size_t i = 0; i < 6; i += 2) {
    h = linear(h, p[i], p[i + 1]);
    if (i < 4) h = act(h);
  }
  return h;
}

/// sum_i <a_i, b_i>
inline Tensor<T> dot_all(const std::vector<Tensor<T>>& a, const std::vector<Tensor<T>>& b) {
  Tensor<T> acc = sum(mul(a[0], b[0]));
  for (std::size_t i = 1; i < a.size(); ++i) acc = add(acc, sum(mul(a[i], b[i])));
  return acc;
}

inline std::vector<Tensor<T>> random_like(const std::vector<Tensor<T>>& ps, Generator& gen) {
  std::vector<Tensor<T>> out;
  for (const auto& p : ps) out.push_back(randn<T>(p.shape(), gen));
  return out;
}

inline Step mlp_fwd_bwd() {
  auto params = mlp_params();
  Generator gen(1);
  auto x = randn<T>(Shape{128, 784}, gen);
  auto y = randint(0, 10, Shape{128}, gen);
  return [=] {
    auto loss = cross_entropy(mlp_forward(params, x, [](const Tensor<T>& h) { return relu(h); }), y);
    (void)grad(loss, params);
  };
}

template <class Act>
Step mlp_hvp(Act act) {
  auto params = mlp_params();
  Generator gen(1);
  auto x = randn<T>(Shape{128, 784}, gen);
  auto y = randint(0, 10, Shape{128}, gen);
  auto vs = random_like(params, gen);
  return [=] {
    auto loss = cross_entropy(mlp_forward(params, x, act), y);
    auto grads = grad(loss, params, {.create_graph = true});
    (void)grad(dot_all(grads, vs), params);
  };
}

/// One "right for the right reasons" step: CE + λ‖mask ⊙ ∂(Σ log softmax)/∂x‖², gradient to the parameters.
inline Step rrr_step() {
  auto params = mlp_params();
  Generator gen(1);
  auto x = randn<T>(Shape{128, 784}, gen);
  auto y = randint(0, 10, Shape{128}, gen);
  auto mask = Tensor<T>::empty(Shape{128, 784});
  for (std::int64_t i = 0; i < mask.numel(); ++i) mask.fresh_data()[i] = (i % 784) % 28 < 5 ? T(1) : T(0);
  const T lambda = 10;
  return [=] {
    auto xg = x.detach().requires_grad_();
    auto logits = mlp_forward(params, xg, [](const Tensor<T>& h) { return relu(h); });
    auto gx = grad(sum(log_softmax(logits, 1)), xg, {.create_graph = true});
    auto loss = add(cross_entropy(logits, y), mul(sum(square(mul(mask, gx))), lambda));
    (void)grad(loss, params);
  };
}

/// HVP of a small CNN: conv 5x5x16, pool, conv 5x5x32, pool, fc 10, on 1x28x28 inputs.
inline Step cnn_hvp(std::int64_t batch = 64) {
  Generator gen(0);
  std::vector<Tensor<T>> p = {uniform_param(Shape{16, 1, 5, 5}, 25, gen),  uniform_param(Shape{16}, 25, gen),
                              uniform_param(Shape{32, 16, 5, 5}, 400, gen), uniform_param(Shape{32}, 400, gen),
                              uniform_param(Shape{10, 512}, 512, gen),     uniform_param(Shape{10}, 512, gen)};
  Generator data(1);
  auto x = randn<T>(Shape{batch, 1, 28, 28}, data);
  auto y = randint(0, 10, Shape{batch}, data);
  auto vs = random_like(p, data);
  return [=] {
    auto h = max_pool2d(relu(conv2d(x, p[0], p[1])), 2);
    h = max_pool2d(relu(conv2d(h, p[2], p[3])), 2);
    auto loss = cross_entropy(linear(flatten(h, 1), p[4], p[5]), y);
    auto grads = grad(loss, p, {.create_graph = true});
    (void)grad(dot_all(grads, vs), p);
  };
}

/// One FLINT training step as examples/06_flint runs it: the paper's batch of 16 MNIST-sized
/// images through f, Φ, d and h (learn/flint_networks.hpp, train mode: dropout on), the four losses
/// at their final-epoch weights, backward and an Adam step (lr 1e-4) over every parameter.
inline Step flint_step() {
  Generator gen(0);
  auto model = learn::flint_mnist<T>(gen);
  model->train();
  auto optimizer = std::make_shared<Adam<T>>(model->parameters(), AdamOptions{.lr = 1e-4});
  auto loss = std::make_shared<learn::FlintLoss<T>>();
  loss->on_epoch(11, 12);  // epoch 12 of 12: every term on
  Generator data(1);
  const learn::Batch<T> batch{rand<T>(Shape{16, 1, 28, 28}, data), randint(0, 10, Shape{16}, data), {}, {}};
  return [=] {
    optimizer->zero_grad();
    backward((*loss)(*model, batch));
    optimizer->step();
  };
}

inline Step gemm_1024() {
  Generator gen(0);
  auto a = randn<T>(Shape{1024, 1024}, gen), b = randn<T>(Shape{1024, 1024}, gen);
  return [=] { (void)matmul(a, b); };
}

/// Every workload by name; FLOP counts where a rate is meaningful.
inline std::map<std::string, std::function<Step()>> workloads() {
  return {
      {"mlp_fwd_bwd", [] { return mlp_fwd_bwd(); }},
      {"mlp_hvp_relu", [] { return mlp_hvp([](const Tensor<T>& h) { return relu(h); }); }},
      {"mlp_hvp_softplus", [] { return mlp_hvp([](const Tensor<T>& h) { return softplus(h); }); }},
      {"rrr_step", [] { return rrr_step(); }},
      {"cnn_hvp", [] { return cnn_hvp(); }},
      {"gemm_1024", [] { return gemm_1024(); }},
      {"flint_step", [] { return flint_step(); }},
      {"meta_step_k1", [] { return meta_step(1); }},
      {"meta_step_k5", [] { return meta_step(5); }},
      {"meta_step_k20", [] { return meta_step(20); }},
  };
}

inline double flops(const std::string& name) { return name == "gemm_1024" ? 2.0 * 1024 * 1024 * 1024 : 0.0; }

}  // namespace metagrad::bench
