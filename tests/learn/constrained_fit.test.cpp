// SPDX-License-Identifier: MIT
#include "metagrad/learn/constrained_fit.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/optim/sgd.hpp"
#include "loss_fixtures.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::learn;
using namespace metagrad::learn_test;

namespace constrained_fit_test {
/// A linear model h(x) = wᵀx whose explanation is the constant gradient w* at every point, so
/// φ(h, x) = ‖w − w*‖²: the constraint set is a ball around w*.
struct LinearProblem {
  std::vector<double> target{3, 0, 0};    // the task loss pulls w to a = (3, 0, 0)
  std::vector<double> explained{0, 0, 0};  // w* = 0: ‖w‖² ≤ α
  GradientConstraint<double> constraint;
  explicit LinearProblem(double alpha, Generator& gen)
      : constraint({randn<double>(Shape{6, 3}, gen), zeros<double>(Shape{6, 3}), {}}, {.alpha = alpha, .batch = 0}) {}
  Tensor<double> task(nn::Linear<double>& net) const {
    return sum(square(sub(reshape(net.weight, Shape{3}), from_vector<double>(target, Shape{3}))));
  }
};
double weight_norm(const nn::Linear<double>& net) {
  double s = 0;
  for (double v : net.weight.values()) s += v * v;
  return std::sqrt(s);
}
}  // namespace constrained_fit_test

TEST_SUITE("learn.constrained_fit") {
  TEST_CASE("learn.constrained_fit: the augmented Lagrangian's multiplier reaches the KKT point of a scalar problem") {
    // min (w − 3)² s.t. w² ≤ 1: w* = 1, and 2(w − 3) + μ·2w = 0 gives μ* = 2.
    auto w = full<double>(Shape{1}, 0.0).requires_grad_();
    SGD<double> opt({w}, {.lr = 0.02});
    AugmentedLagrangian<double> al({.rho = 2, .dual_every = 50});
    for (int step = 0; step < 20000; ++step) {
      opt.zero_grad();
      const auto phi = sum(square(w));
      backward(al.objective(sum(square(sub(w, 3.0))), phi, 1.0));
      opt.step();
      al.after_step(phi.item() - 1.0);
    }
    CHECK(w.item() == doctest::Approx(1.0).epsilon(1e-3));
    CHECK(al.mu() == doctest::Approx(2.0).epsilon(1e-2));
  }

  TEST_CASE("learn.constrained_fit: fit_constrained with the augmented Lagrangian finds the KKT point of a gradient constraint") {
    // min ‖w − a‖² s.t. ‖w‖² ≤ α with ‖a‖ = 3, α = 1: w = a/3 and μ* = (‖a‖ − √α)/√α = 2.
    Generator gen(31);
    constrained_fit_test::LinearProblem p(1.0, gen);
    nn::Linear<double> net(3, 1, gen, false);
    SGD<double> opt(net.parameters(), {.lr = 0.02});
    AugmentedLagrangian<double> al({.rho = 2, .dual_every = 50});
    const auto h = fit_constrained(
        net, opt, al, [&](nn::Linear<double>& m, int) { return p.task(m); }, p.constraint,
        [&](nn::Linear<double>& m) { return p.task(m).item() + 1e3 * std::max(0.0, p.constraint.value(m) - 1.0); },
        {.steps = 20000, .eval_every = 1000});
    CHECK(net.weight(0, 0) == doctest::Approx(1.0).epsilon(2e-3));
    CHECK(std::abs(net.weight(0, 1)) < 1e-6);
    CHECK(al.mu() == doctest::Approx(2.0).epsilon(2e-2));
    CHECK(h.best_step > 0);
  }

  TEST_CASE("learn.constrained_fit: the penalty's objective, and ERM ignores the constraint") {
    Generator gen(32);
    constrained_fit_test::LinearProblem p(0.25, gen);
    nn::Linear<double> erm_net(3, 1, gen, false), pen_net(3, 1, gen, false);
    pen_net.load_state_dict(erm_net.state_dict());
    const auto task = p.task(pen_net), phi = p.constraint.estimate(pen_net, gen);
    FixedPenalty<double> pen(4.0);
    CHECK(pen.objective(task, phi, 0.25).item() == doctest::Approx(task.item() + 4 * phi.item()).epsilon(1e-14));
    Unconstrained<double> erm;
    Adam<double> o1(erm_net.parameters(), {.lr = 0.05}), o2(pen_net.parameters(), {.lr = 0.05});
    const auto task_of = [&](nn::Linear<double>& m, int) { return p.task(m); };
    const auto score = [&](nn::Linear<double>& m) { return p.task(m).item(); };
    fit_constrained(erm_net, o1, erm, task_of, p.constraint, score, {.steps = 800});
    fit_constrained(pen_net, o2, pen, task_of, p.constraint,
                    [&](nn::Linear<double>& m) { return p.task(m).item() + 4 * p.constraint.value(m); }, {.steps = 800});
    // ERM reaches a (‖w‖ = 3); the penalty's minimiser is a/(1 + λ) = a/5 (‖w‖ = 0.6).
    CHECK(constrained_fit_test::weight_norm(erm_net) == doctest::Approx(3.0).epsilon(1e-3));
    CHECK(constrained_fit_test::weight_norm(pen_net) == doctest::Approx(0.6).epsilon(1e-3));
  }

  TEST_CASE("learn.constrained_fit: the model ends in its best validation state, not its last") {
    Generator gen(33);
    constrained_fit_test::LinearProblem p(1.0, gen);
    nn::Linear<double> net(3, 1, gen, false);
    net.weight.mutable_data()[0] = 0, net.weight.mutable_data()[1] = 0, net.weight.mutable_data()[2] = 0;
    SGD<double> opt(net.parameters(), {.lr = 0.01});
    Unconstrained<double> erm;
    // w moves from 0 to (3, 0, 0); validation prefers w₀ = 1.5, passed half-way.
    const auto score = [](nn::Linear<double>& m) { return std::abs(m.weight(0, 0) - 1.5); };
    const auto h = fit_constrained(
        net, opt, erm, [&](nn::Linear<double>& m, int) { return p.task(m); }, p.constraint, score,
        {.steps = 600, .eval_every = 5});
    CHECK(h.best_step > 0);
    CHECK(h.best_step < 600);
    CHECK(score(net) == doctest::Approx(h.best_score));
    CHECK(score(net) < 0.05);
    for (const auto& [step, s] : h.scores) CHECK(s >= h.best_score);
  }

  TEST_CASE("learn.constrained_fit: each variational block step decreases J, and q ends inside the constraint") {
    Generator gen(34);
    auto h = tanh_mlp(3, 5, 1, gen), q = tanh_mlp(3, 5, 1, gen);
    Explanations<double> e{randn<double>(Shape{12, 3}, gen), randn<double>(Shape{12, 3}, gen) * 0.3, {}};
    GradientConstraint<double> c(e, {.alpha = 0.05, .batch = 0});
    const auto x = randn<double>(Shape{8, 3}, gen), y = randn<double>(Shape{8, 1}, gen);
    const auto task = [&](Net& m, int) { return mse_loss(m->forward(x), y); };
    Variational<double> var({.lambda = 5, .gamma = 1});
    const auto j = [&] { return var.objective(task(h, 0), h, q, c, e).item(); };
    SGD<double> oh(h->parameters(), {.lr = 0.01}), oq(q->parameters(), {.lr = 0.01});
    for (int round = 0; round < 5; ++round) {
      const double before = j();
      oh.zero_grad();
      backward(var.h_objective(task(h, 0), h, q, e.x));
      oh.step();
      const double mid = j();
      oq.zero_grad();
      backward(var.q_objective(h, q, c, e));
      oq.step();
      const double after = j();
      CHECK(mid < before);
      CHECK(after < mid);
    }
    Adam<double> ah(h->parameters(), {.lr = 0.02}), aq(q->parameters(), {.lr = 0.02});
    const double phi_before = c.value(q);
    const auto hist = fit_variational(q, h, aq, ah, Variational<double>({.lambda = 50, .gamma = 1}), task, c,
                                      [&](Net& m) { return c.value(m); }, {.steps = 400, .eval_every = 20});
    MESSAGE("E phi(q): before ", phi_before, ", after ", c.value(q), "; E phi(h) after ", c.value(h));
    CHECK(c.value(q) < 0.2 * phi_before);
    CHECK(c.value(q) < 0.5 * c.value(h));  // q is the constrained one; h fits the labels
    CHECK(c.value(q) == doctest::Approx(hist.best_score));
  }

  TEST_CASE("learn.constrained_fit: bad options name the method") {
    METAGRAD_CHECK_ERROR(FixedPenalty<double>(-1), "FixedPenalty", "lambda");
    METAGRAD_CHECK_ERROR(AugmentedLagrangian<double>({.rho = 0}), "AugmentedLagrangian", "rho");
    METAGRAD_CHECK_ERROR(AugmentedLagrangian<double>({.mu = -1}), "AugmentedLagrangian", "mu");
    METAGRAD_CHECK_ERROR(Variational<double>({.gamma = 0}), "Variational", "gamma");
    Generator gen(35);
    constrained_fit_test::LinearProblem p(1.0, gen);
    nn::Linear<double> net(3, 1, gen, false);
    SGD<double> opt(net.parameters(), {.lr = 0.01});
    Unconstrained<double> erm;
    METAGRAD_CHECK_ERROR(fit_constrained(
                             net, opt, erm, [&](nn::Linear<double>& m, int) { return p.task(m); }, p.constraint,
                             [](nn::Linear<double>&) { return 0.0; }, {.steps = 0}),
                         "fit_constrained", "steps");
    METAGRAD_CHECK_ERROR(fit_constrained(
                             net, opt, erm, [&](nn::Linear<double>& m, int) { return m.weight; }, p.constraint,
                             [](nn::Linear<double>&) { return 0.0; }, {.steps = 2}),
                         "fit_constrained", "scalar", "[1, 3]");
  }
}
