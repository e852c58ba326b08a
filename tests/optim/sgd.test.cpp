// SPDX-License-Identifier: MIT
#include <cstring>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/optim/sgd.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

namespace {
/// 0.5 * sum(p^2): its gradient is p itself, which keeps the hand computations short.
template <Floating T>
void half_square_backward(const Tensor<T>& p) {
  backward(mul(sum(mul(p, p)), T(0.5)));
}

/// Runs `steps` SGD steps on 0.5 * sum(p^2) from p0 and returns the trajectory of p.
std::vector<double> trajectory(double p0, SGDOptions options, int steps) {
  auto p = tensor<double>({p0}).requires_grad_();
  SGD<double> opt({p}, options);
  std::vector<double> out;
  for (int k = 0; k < steps; ++k) {
    opt.zero_grad();
    half_square_backward(p);
    opt.step();
    out.push_back(p.item());
  }
  return out;
}

/// The PyTorch SGD rule written out for one parameter vector with gradient a * p + b.
std::vector<double> reference_sgd(std::vector<double> p, const std::vector<double>& a, const std::vector<double>& b,
                                  const SGDOptions& o, int steps) {
  std::vector<double> buf(p.size());
  for (int k = 0; k < steps; ++k)
    for (std::size_t i = 0; i < p.size(); ++i) {
      double d = a[i] * p[i] + b[i] + o.weight_decay * p[i];
      buf[i] = k == 0 ? d : o.momentum * buf[i] + (1 - o.dampening) * d;
      if (o.momentum != 0) d = o.nesterov ? d + o.momentum * buf[i] : buf[i];
      p[i] -= o.lr * d;
    }
  return p;
}
}  // namespace

TEST_SUITE("optim.sgd") {
  TEST_CASE("optim.SGD: three steps on 0.5 p^2 equal the hand-computed values") {
    // plain: p <- p - 0.1 p
    const auto plain = trajectory(1.0, {.lr = 0.1}, 3);
    CHECK(plain[0] == doctest::Approx(0.9).epsilon(1e-15));
    CHECK(plain[1] == doctest::Approx(0.81).epsilon(1e-15));
    CHECK(plain[2] == doctest::Approx(0.729).epsilon(1e-15));
    // momentum 0.9: b = 1, 1.8, 2.34; p = 0.9, 0.72, 0.486
    const auto heavy = trajectory(1.0, {.lr = 0.1, .momentum = 0.9}, 3);
    CHECK(heavy[0] == doctest::Approx(0.9).epsilon(1e-15));
    CHECK(heavy[1] == doctest::Approx(0.72).epsilon(1e-15));
    CHECK(heavy[2] == doctest::Approx(0.486).epsilon(1e-15));
    // Nesterov: b = 1, 1.71, 2.1141; d = 1.9, 2.349, 2.47779; p = 0.81, 0.5751, 0.327321
    const auto nesterov = trajectory(1.0, {.lr = 0.1, .momentum = 0.9, .nesterov = true}, 3);
    CHECK(nesterov[0] == doctest::Approx(0.81).epsilon(1e-15));
    CHECK(nesterov[1] == doctest::Approx(0.5751).epsilon(1e-15));
    CHECK(nesterov[2] == doctest::Approx(0.327321).epsilon(1e-15));
    // dampening 0.5 (the first step copies the gradient undamped): b = 1, 0.9 + 0.45 = 1.35;
    // p = 0.9, 0.9 - 0.135 = 0.765
    const auto damped = trajectory(1.0, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5}, 2);
    CHECK(damped[1] == doctest::Approx(0.765).epsilon(1e-15));
    // weight decay 0.5: d = 1.5 p, p <- p - 0.15 p
    const auto decayed = trajectory(1.0, {.lr = 0.1, .weight_decay = 0.5}, 2);
    CHECK(decayed[1] == doctest::Approx(0.85 * 0.85).epsilon(1e-15));
  }

  TEST_CASE("optim.SGD: every option together matches the PyTorch rule on a quadratic") {
    const std::vector<double> p0{0.5, -1.25, 2.0, 0.0, 3.5}, a{1.0, 2.0, 0.5, 3.0, 0.25}, b{0.1, -0.2, 0.3, -0.4, 0.5};
    for (const SGDOptions o : {SGDOptions{.lr = 0.05, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.01},
                               SGDOptions{.lr = 0.05, .momentum = 0.8, .nesterov = true, .weight_decay = 0.02}}) {
      auto p = from_vector<double>(p0).requires_grad_();
      const auto ta = from_vector<double>(a), tb = from_vector<double>(b);
      SGD<double> opt({p}, o);
      for (int k = 0; k < 3; ++k) {
        opt.zero_grad();
        backward(sum(mul(mul(ta, mul(p, p)), 0.5) + mul(tb, p)));
        opt.step();
      }
      CHECK(allclose(p, from_vector<double>(reference_sgd(p0, a, b, o, 3)), 1e-15, 1e-14));
    }
  }

  TEST_CASE("optim.SGD: a large float tensor (split across threads) matches the small-tensor loop bit for bit") {
    // Same values in one big parameter and in many small ones: chunking must not change any bit.
    const std::int64_t n = 200'003;
    Generator gen(3);
    const auto init = randn<float>(Shape{n}, gen);
    const auto grad = randn<float>(Shape{n}, gen);
    auto big = from_vector<float>(init.to_vector()).requires_grad_();
    SGD<float> opt_big({big}, {.lr = 0.01, .momentum = 0.9, .nesterov = true, .weight_decay = 1e-3});
    std::vector<Tensor<float>> small;
    const std::int64_t chunk = 997;
    for (std::int64_t s = 0; s < n; s += chunk) {
      const std::int64_t len = std::min(chunk, n - s);
      small.push_back(from_vector<float>({init.data() + s, init.data() + s + len}).requires_grad_());
    }
    SGD<float> opt_small(small, {.lr = 0.01, .momentum = 0.9, .nesterov = true, .weight_decay = 1e-3});
    for (int k = 0; k < 3; ++k) {
      big.set_grad(from_vector<float>(grad.to_vector()));
      opt_big.step();
      for (std::size_t c = 0; c < small.size(); ++c) {
        const auto s = static_cast<std::int64_t>(c) * chunk;
        small[c].set_grad(from_vector<float>({grad.data() + s, grad.data() + s + small[c].numel()}));
      }
      opt_small.step();
    }
    bool same = true;
    for (std::size_t c = 0; c < small.size(); ++c)
      same = same && std::memcmp(small[c].data(), big.data() + static_cast<std::int64_t>(c) * chunk,
                                 sizeof(float) * static_cast<std::size_t>(small[c].numel())) == 0;
    CHECK(same);
  }

  TEST_CASE("optim.SGD: parameters without a gradient are skipped; zero_grad drops gradients") {
    auto a = tensor<double>({1.0}).requires_grad_();
    auto b = tensor<double>({2.0}).requires_grad_();
    SGD<double> opt({a, b}, {.lr = 0.5});
    half_square_backward(a);
    opt.step();
    CHECK(a.item() == 0.5);
    CHECK(b.item() == 2.0);
    opt.zero_grad();
    CHECK_FALSE(a.grad().defined());
  }

  TEST_CASE("optim.SGD: stepping a parameter a pending graph saved makes that backward fail loudly") {
    auto p = tensor<double>({1.0, 2.0}).requires_grad_();
    SGD<double> opt({p}, {.lr = 0.1});
    half_square_backward(p);
    const auto stale = sum(mul(p, p));  // saves p
    opt.step();
    METAGRAD_CHECK_ERROR(backward(stale), "modified in place");
  }

  TEST_CASE("optim.SGD: bad parameters and hyperparameters are clear errors") {
    auto p = tensor<double>({1.0}).requires_grad_();
    METAGRAD_CHECK_ERROR(SGD<double>({}, {}), "SGD", "empty parameter list");
    METAGRAD_CHECK_ERROR(SGD<double>({mul(p, 2.0)}, {}), "SGD", "parameter 0", "not a leaf");
    METAGRAD_CHECK_ERROR(SGD<double>({p, p.detach()}, {}), "SGD", "parameter 1", "shares its storage");
    METAGRAD_CHECK_ERROR(SGD<double>({p}, {.lr = -1}), "SGD", "lr = -1");
    METAGRAD_CHECK_ERROR(SGD<double>({p}, {.momentum = -0.5}), "SGD", "momentum");
    METAGRAD_CHECK_ERROR(SGD<double>({p}, {.nesterov = true}), "SGD", "Nesterov", "momentum > 0");
    METAGRAD_CHECK_ERROR(SGD<double>({p}, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}), "SGD", "dampening");
    SGD<double> opt({p}, {});
    METAGRAD_CHECK_ERROR(opt.set_lr(std::nan("")), "SGD", "lr");
  }
}
