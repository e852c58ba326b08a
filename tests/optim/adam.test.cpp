// SPDX-License-Identifier: MIT
#include <cmath>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/optim/adam.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

namespace {
/// The gradient used throughout: of sum(a * p^2 / 2 + b * p), i.e. a * p + b.
template <Floating T>
void quadratic_backward(const Tensor<T>& p, const Tensor<T>& a, const Tensor<T>& b) {
  backward(sum(mul(mul(a, mul(p, p)), T(0.5)) + mul(b, p)));
}

/// torch.optim.Adam / AdamW (amsgrad=False) written out in double for one parameter vector.
std::vector<double> reference_adam(std::vector<double> p, const std::vector<double>& a, const std::vector<double>& b,
                                   const AdamOptions& o, int steps) {
  std::vector<double> m(p.size()), v(p.size());
  for (int t = 1; t <= steps; ++t) {
    const double bc1 = 1 - std::pow(o.beta1, t), bc2 = 1 - std::pow(o.beta2, t);
    for (std::size_t i = 0; i < p.size(); ++i) {
      double g = a[i] * p[i] + b[i];
      if (o.decoupled_weight_decay) p[i] *= 1 - o.lr * o.weight_decay;
      else g += o.weight_decay * p[i];
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
      const double denom = std::sqrt(v[i]) / std::sqrt(bc2) + o.eps;
      p[i] -= o.lr / bc1 * m[i] / denom;
    }
  }
  return p;
}

const std::vector<double> kP0{0.5, -1.25, 2.0, 0.0, 3.5}, kA{1.0, 2.0, 0.5, 3.0, 0.25}, kB{0.1, -0.2, 0.3, -0.4, 0.5};

template <Floating T, class Opt>
Tensor<T> run(const AdamOptions& o, int steps) {
  auto p = from_vector<T>(std::vector<T>(kP0.begin(), kP0.end())).requires_grad_();
  const auto a = from_vector<T>(std::vector<T>(kA.begin(), kA.end()));
  const auto b = from_vector<T>(std::vector<T>(kB.begin(), kB.end()));
  Opt opt({p}, o);
  for (int k = 0; k < steps; ++k) {
    opt.zero_grad();
    quadratic_backward(p, a, b);
    opt.step();
  }
  return p;
}
}  // namespace

TEST_SUITE("optim.adam") {
  TEST_CASE("optim.Adam: the first step, by hand") {
    // g = p = 1: m = 0.1, v = 0.001; m / bc1 = 1, sqrt(v / bc2) = 1, so p = 1 - 0.1 / (1 + 1e-8).
    auto p = tensor<double>({1.0}).requires_grad_();
    Adam<double> opt({p}, {.lr = 0.1});
    backward(mul(sum(mul(p, p)), 0.5));
    opt.step();
    CHECK(p.item() == doctest::Approx(1.0 - 0.1 / (1.0 + 1e-8)).epsilon(1e-15));
    CHECK(p.item() != 0.9);  // eps is really there
  }

  TEST_CASE("optim.Adam: two steps equal the PyTorch formula (double and float)") {
    const AdamOptions plain{.lr = 0.01}, l2{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.1};
    for (const auto& o : {plain, l2}) {
      const auto expected = from_vector<double>(reference_adam(kP0, kA, kB, o, 2));
      CHECK(allclose(run<double, Adam<double>>(o, 2), expected, 1e-15, 1e-14));
      const auto f = run<float, Adam<float>>(o, 2);
      CHECK(allclose(from_vector<double>(std::vector<double>(f.data(), f.data() + f.numel())), expected, 1e-6, 1e-6));
    }
  }

  TEST_CASE("optim.AdamW: two steps equal the PyTorch formula; decoupled decay differs from Adam's L2") {
    AdamOptions o{.lr = 0.05, .weight_decay = 0.3};
    auto w = run<double, AdamW<double>>(o, 2);
    o.decoupled_weight_decay = true;
    CHECK(allclose(w, from_vector<double>(reference_adam(kP0, kA, kB, o, 2)), 1e-15, 1e-14));
    o.decoupled_weight_decay = false;
    CHECK_FALSE(allclose(w, run<double, Adam<double>>(o, 2), 1e-6, 0));
    // AdamW's default weight decay is PyTorch's 0.01.
    auto p = tensor<double>({1.0}).requires_grad_();
    AdamW<double> opt({p});
    CHECK(opt.options().weight_decay == 0.01);
    CHECK(opt.options().decoupled_weight_decay);
  }

  TEST_CASE("optim.Adam: a resumed run (state_dict, load_state_dict) equals an uninterrupted one bit for bit") {
    const AdamOptions o{.lr = 0.02, .weight_decay = 0.01};
    const auto a = from_vector<float>({1.0f, 2.0f, 0.5f}), b = from_vector<float>({0.1f, -0.2f, 0.3f});
    auto p = from_vector<float>({0.5f, -1.0f, 2.0f}).requires_grad_();
    Adam<float> opt({p}, o);
    for (int k = 0; k < 2; ++k) {
      opt.zero_grad();
      quadratic_backward(p, a, b);
      opt.step();
    }
    const auto state = opt.state_dict();
    CHECK(state.names() == std::vector<std::string>{"0.step", "0.exp_avg", "0.exp_avg_sq"});
    CHECK(state.at("0.step").item() == 2.0f);
    auto q = from_vector<float>(p.to_vector()).requires_grad_();
    Adam<float> resumed({q}, o);
    resumed.load_state_dict(state);
    for (int k = 0; k < 3; ++k) {
      for (auto* x : {&opt, &resumed}) x->zero_grad();
      quadratic_backward(p, a, b);
      quadratic_backward(q, a, b);
      opt.step();
      resumed.step();
    }
    CHECK(p.to_vector() == q.to_vector());
    // The loaded state was copied, not aliased.
    CHECK(resumed.state_dict().at("0.exp_avg").data() != state.at("0.exp_avg").data());
  }

  TEST_CASE("optim.Adam: load_state_dict rejects bad state and changes nothing") {
    auto p = tensor<double>({1.0, 2.0}).requires_grad_();
    Adam<double> opt({p});
    NamedTensors<double> bad_shape{{"0.step", scalar_tensor(1.0)}, {"0.exp_avg", zeros<double>(Shape{3})},
                                   {"0.exp_avg_sq", zeros<double>(Shape{2})}};
    METAGRAD_CHECK_ERROR(opt.load_state_dict(bad_shape), "Adam", "load_state_dict", "'0.exp_avg'", "[3]", "[2]");
    NamedTensors<double> partial{{"0.step", scalar_tensor(1.0)}};
    METAGRAD_CHECK_ERROR(opt.load_state_dict(partial), "Adam", "parameter 0", "1 of its 3");
    NamedTensors<double> unknown{{"1.step", scalar_tensor(1.0)}, {"0.momentum_buffer", zeros<double>(Shape{2})}};
    METAGRAD_CHECK_ERROR(opt.load_state_dict(unknown), "unexpected key '1.step'", "no state field 'momentum_buffer'");
    NamedTensors<double> bad_step{{"0.step", scalar_tensor(1.5)}, {"0.exp_avg", zeros<double>(Shape{2})},
                                  {"0.exp_avg_sq", zeros<double>(Shape{2})}};
    METAGRAD_CHECK_ERROR(opt.load_state_dict(bad_step), "'0.step'", "whole number", "1.5");
    CHECK(opt.state_dict().empty());
  }

  TEST_CASE("optim.Adam: bad hyperparameters are clear errors") {
    auto p = tensor<double>({1.0}).requires_grad_();
    METAGRAD_CHECK_ERROR(Adam<double>({p}, {.beta1 = 1.0}), "Adam", "beta1 = 1", "[0, 1)");
    METAGRAD_CHECK_ERROR(Adam<double>({p}, {.beta2 = -0.1}), "Adam", "beta2");
    METAGRAD_CHECK_ERROR(AdamW<double>({p}, {.eps = -1}), "AdamW", "eps");
    METAGRAD_CHECK_ERROR(Adam<double>({p}, {.weight_decay = -1}), "Adam", "weight_decay");
  }
}
