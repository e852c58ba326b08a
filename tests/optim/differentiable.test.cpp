// SPDX-License-Identifier: MIT
#include <cmath>
#include <cstring>
#include <functional>

#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/optim/differentiable.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using V = std::vector<Tensor<double>>;

namespace {
/// A non-quadratic inner loss of two parameters, so that second-order terms are not trivial.
template <Floating T>
Tensor<T> inner_loss(const std::vector<Tensor<T>>& p) {
  const auto target = full<T>(p[0].shape(), T(0.3));
  return add(sum(mul(square(sub(p[0], target)), tanh(p[1]))), mul(sum(exp(mul(p[0], T(0.5)))), T(0.2))) +
         sum(square(p[1]));
}

template <Floating T>
bool bitwise_equal(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.numel())) == 0;
}

/// `steps` in-place steps of `opt` (optionally clipped) vs `steps` first-order differentiable steps
/// of `diff` from the same start; true when every parameter is identical after every step.
template <Floating T, class Opt, class Diff>
bool same_trajectory(Opt& opt, std::vector<Tensor<T>> leaves, Diff& diff, std::vector<Tensor<T>> params, int steps,
                     double clip = 0) {
  bool same = true;
  for (int k = 0; k < steps; ++k) {
    opt.zero_grad();
    backward(inner_loss(leaves));
    if (clip > 0) clip_grad_norm_(leaves, clip);
    opt.step();
    params = diff.step(params, inner_loss(params));
    for (std::size_t i = 0; i < params.size(); ++i) same = same && bitwise_equal(leaves[i], params[i]);
    // The new parameters stay on the graph (through p, not through the detached gradients).
    same = same && params[0].requires_grad();
  }
  return same;
}

template <Floating T>
std::vector<Tensor<T>> start(std::uint64_t seed) {
  Generator gen(seed);
  return {randn<T>(Shape{3, 4}, gen), randn<T>(Shape{4}, gen)};
}
template <Floating T>
std::vector<Tensor<T>> copies(const std::vector<Tensor<T>>& xs) {
  std::vector<Tensor<T>> out;
  for (const auto& x : xs) out.push_back(from_vector<T>(x.to_vector(), x.shape()).requires_grad_());
  return out;
}

/// The outer loss after `steps` differentiable steps from p0: what meta-learning differentiates.
Tensor<double> unrolled(DifferentiableOptimizer<double>& opt, V params, int steps) {
  opt.reset();
  for (int k = 0; k < steps; ++k) params = opt.step(params, inner_loss(params));
  return add(sum(square(params[0])), sum(mul(params[1], params[1])));
}

/// f'(x) of a scalar function by autodiff; with `twice`, f''(x) through the first derivative's graph.
double derivative(const std::function<Tensor<double>(const Tensor<double>&)>& f, double x, bool twice = false) {
  auto leaf = scalar_tensor(x).requires_grad_();
  const auto d1 = grad(f(leaf), leaf, {.create_graph = twice});
  return twice ? grad(d1, leaf).item() : d1.item();
}
}  // namespace

TEST_SUITE("optim.differentiable") {
  TEST_CASE("optim.DifferentiableSGD: first-order steps equal SGD bit for bit (momentum, Nesterov, decay, clipping)") {
    const auto p0 = start<float>(1);
    for (const SGDOptions o : {SGDOptions{.lr = 0.05}, SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.2},
                               SGDOptions{.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01}}) {
      for (const double clip : {0.0, 0.5}) {
        auto leaves = copies(p0);
        SGD<float> opt(leaves, o);
        DifferentiableSGD<float> diff(o, {.first_order = true, .max_grad_norm = clip});
        CHECK(same_trajectory(opt, leaves, diff, copies(p0), 5, clip));
      }
    }
  }

  TEST_CASE("optim.DifferentiableAdam: first-order steps equal Adam and AdamW bit for bit (float and double)") {
    const AdamOptions plain{.lr = 0.01}, l2{.lr = 0.02, .beta1 = 0.8, .eps = 1e-6, .weight_decay = 0.05};
    for (const auto& o : {plain, l2}) {
      auto leaves = copies(start<float>(2));
      Adam<float> opt(leaves, o);
      DifferentiableAdam<float> diff(o, {.first_order = true});
      CHECK(same_trajectory(opt, leaves, diff, copies(start<float>(2)), 5));
    }
    AdamOptions w{.lr = 0.02, .weight_decay = 0.1};
    auto leaves = copies(start<double>(3));
    AdamW<double> opt(leaves, w);
    w.decoupled_weight_decay = true;
    DifferentiableAdam<double> diff(w, {.first_order = true, .max_grad_norm = 0.3});
    CHECK(same_trajectory(opt, leaves, diff, copies(start<double>(3)), 5, 0.3));
  }

  TEST_CASE("optim.DifferentiableSGD: the hypergradient w.r.t. the learning rate matches finite differences") {
    // d(outer loss after 2 steps)/d lr, for plain SGD and for Nesterov momentum with decay; and
    // d^2/d lr^2 (differentiating through grad-of-grad) against differences of the first derivative.
    for (const SGDOptions o : {SGDOptions{}, SGDOptions{.momentum = 0.9, .nesterov = true, .weight_decay = 0.01}}) {
      const auto p0 = start<double>(4);
      auto f = [&](const Tensor<double>& lr) {
        DifferentiableSGD<double> opt(o);
        opt.set_lr(lr);
        return unrolled(opt, copies(p0), 2);
      };
      const auto result = gradcheck([&](const V& x) { return f(x[0]); }, {scalar_tensor(0.1)});
      CHECK_MESSAGE(result.ok, result.report);
      const double h = 1e-5, numeric = (derivative(f, 0.1 + h) - derivative(f, 0.1 - h)) / (2 * h);
      CHECK(derivative(f, 0.1, true) == doctest::Approx(numeric).epsilon(1e-6));
    }
  }

  TEST_CASE("optim.DifferentiableSGD: the meta-gradient w.r.t. the initial parameters (second order) matches finite differences") {
    // SMAT's student optimizer: SGD with weight decay 0.01 and clipping at a norm that is active.
    auto f = [](const V& x) {
      DifferentiableSGD<double> opt({.lr = 0.1, .momentum = 0.5, .weight_decay = 0.01}, {.max_grad_norm = 0.5});
      return unrolled(opt, x, 3);
    };
    const auto p0 = start<double>(5);
    const auto leaves = copies(p0);
    const auto g = grad<double>(inner_loss(leaves), leaves);
    CHECK(std::sqrt(sum(square(g[0])).item() + sum(square(g[1])).item()) > 0.5);  // clipping is active
    const auto result = gradcheck(f, p0);
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("optim.DifferentiableAdam: hypergradients w.r.t. lr and initial parameters match finite differences") {
    for (const AdamOptions o : {AdamOptions{.lr = 0.05}, AdamOptions{.lr = 0.05, .weight_decay = 0.1, .decoupled_weight_decay = true}}) {
      const auto p0 = start<double>(6);
      auto by_lr = [&](const V& x) {
        DifferentiableAdam<double> opt(o);
        opt.set_lr(x[0]);
        return unrolled(opt, copies(p0), 3);
      };
      const auto r1 = gradcheck(by_lr, {scalar_tensor(0.05)});
      CHECK_MESSAGE(r1.ok, r1.report);
      auto by_p0 = [&](const V& x) {
        DifferentiableAdam<double> opt(o);
        return unrolled(opt, x, 2);
      };
      const auto r2 = gradcheck(by_p0, p0);
      CHECK_MESSAGE(r2.ok, r2.report);
    }
  }

  TEST_CASE("optim.DifferentiableAdam: a gradient component that is exactly zero gives a finite hypergradient") {
    // The inner loss ignores x[1], so its gradient and Adam's second moment are exactly 0 there; a
    // plain sqrt would make the hypergradient inf * 0 = NaN. It is 1 (x[1] passes through unchanged).
    auto f = [](const V& x) {
      DifferentiableAdam<double> opt({.lr = 0.1});
      V p = x;
      for (int k = 0; k < 2; ++k) p = opt.step(p, sum(square(p[0])));
      return add(sum(square(p[0])), sum(mul(p[1], 3.0)));
    };
    const V x{tensor<double>({0.4, -0.7}), tensor<double>({1.5, 2.5})};
    const auto result = gradcheck(f, x);
    CHECK_MESSAGE(result.ok, result.report);
    V leaves{from_vector<double>(x[0].to_vector()).requires_grad_(), from_vector<double>(x[1].to_vector()).requires_grad_()};
    CHECK(grad(f(leaves), leaves[1]).to_vector() == std::vector<double>{3.0, 3.0});
  }

  TEST_CASE("optim.DifferentiableSGD: first-order mode passes the outer gradient straight through (FOMAML)") {
    // With p' = p - lr * d and d constant, d outer/d p0 = d outer/d p_K, and d outer/d lr = -<d outer/d p_K, sum of d>.
    const auto p0 = copies(start<double>(7));
    DifferentiableSGD<double> opt({.lr = 0.1}, {.first_order = true});
    auto lr = scalar_tensor(0.1).requires_grad_();
    opt.set_lr(lr);
    V p = p0;
    V directions;
    for (int k = 0; k < 2; ++k) {
      const auto g = grad<double>(inner_loss(p), p);
      directions = directions.empty() ? g : V{add(directions[0], g[0]), add(directions[1], g[1])};
      p = opt.step(p, g);
    }
    const auto outer = add(sum(square(p[0])), sum(mul(p[1], p[1])));
    const auto at_end = grad<double>(outer, p, {.retain_graph = true});
    const auto through = grad<double>(outer, V{p0[0], p0[1], lr});
    CHECK(allclose(through[0], at_end[0], 1e-15, 1e-14));
    CHECK(allclose(through[1], at_end[1], 1e-15, 1e-14));
    const double expected = -(sum(mul(at_end[0], directions[0])).item() + sum(mul(at_end[1], directions[1])).item());
    CHECK(through[2].item() == doctest::Approx(expected).epsilon(1e-13));
  }

  TEST_CASE("optim.DifferentiableSGD: per-parameter learning-rate tensors (Meta-SGD) and a shared one") {
    const auto p0 = copies(start<double>(8));
    const auto g = grad<double>(inner_loss(p0), p0);
    DifferentiableSGD<double> scalar_opt({.lr = 0.1});
    const auto by_scalar = scalar_opt.step(p0, g);
    DifferentiableSGD<double> shared({.lr = 123.0});
    shared.set_lr(scalar_tensor(0.1));
    const auto by_shared = shared.step(p0, g);
    CHECK(bitwise_equal(by_scalar[0], by_shared[0]));
    CHECK(bitwise_equal(by_scalar[1], by_shared[1]));
    // Per-element rates for p0[0], one rate for p0[1].
    auto lr0 = full<double>(Shape{3, 4}, 0.1).requires_grad_();
    auto lr1 = scalar_tensor(0.2).requires_grad_();
    DifferentiableSGD<double> meta;
    meta.set_lr(V{lr0, lr1});
    const auto p1 = meta.step(p0, g);
    CHECK(allclose(p1[1], sub(p0[1], mul(g[1], 0.2)), 0, 0));
    const auto dlr = grad<double>(sum(p1[0]) + sum(p1[1]), V{lr0, lr1});
    CHECK(allclose(dlr[0], neg(g[0]), 0, 0));
    CHECK(dlr[1].item() == doctest::Approx(-sum(g[1]).item()).epsilon(1e-15));
  }

  TEST_CASE("optim.DifferentiableOptimizer: misuse is a clear error") {
    const auto p0 = copies(start<double>(9));
    const auto g = grad<double>(inner_loss(p0), p0);
    DifferentiableSGD<double> opt({.lr = 0.1});
    METAGRAD_CHECK_ERROR(opt.step(p0, V{g[0]}), "DifferentiableSGD", "2 parameters but 1 gradients");
    METAGRAD_CHECK_ERROR(opt.step(p0, V{g[1], g[0]}), "DifferentiableSGD", "gradient of shape [4]", "[3, 4]");
    (void)opt.step(p0, g);
    METAGRAD_CHECK_ERROR(opt.step(V{p0[0]}, V{g[0]}), "DifferentiableSGD", "reset()");
    opt.reset();
    opt.set_lr(zeros<double>(Shape{5}));
    METAGRAD_CHECK_ERROR(opt.step(p0, g), "DifferentiableSGD", "learning rate of shape [5]", "[3, 4]");
    METAGRAD_CHECK_ERROR(DifferentiableSGD<double>({.lr = 0.1}, {.max_grad_norm = -1}), "max_grad_norm");
    METAGRAD_CHECK_ERROR(DifferentiableAdam<double>({.beta2 = 1.5}), "DifferentiableAdam", "beta2");
  }

  TEST_CASE("optim.DifferentiableSGD: named parameters keep their names") {
    NamedTensors<double> params{{"w", tensor<double>({1.0, 2.0}).requires_grad_()}, {"b", scalar_tensor(0.5).requires_grad_()}};
    DifferentiableSGD<double> opt({.lr = 0.5});
    const auto next = opt.step(params, add(sum(square(params.at("w"))), mul(params.at("b"), 2.0)));
    CHECK(next.names() == std::vector<std::string>{"w", "b"});
    CHECK(next.at("w").to_vector() == std::vector<double>{0.0, 0.0});
    CHECK(next.at("b").item() == -0.5);
  }
}
