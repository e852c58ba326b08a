// SPDX-License-Identifier: MIT
// Implicit hypergradients on ridge regression, where everything has a closed form:
//   inner(θ; λ) = ½ mean((Xθ - y)²) + ½ λ ‖θ‖²,  θ* = (A + λI)⁻¹ b,  A = XᵀX / n,  b = Xᵀy / n,
//   outer(θ) = ½ mean((X_v θ - y_v)²),  d outer(θ*) / dλ = -gᵀ (A + λI)⁻¹ θ*,  g = ∂outer/∂θ at θ*.
// The unrolled hypergradient of gradient descent from θ = 0 must approach it as K grows.
#include <Eigen/Dense>

#include "metagrad/meta/hypergradient.hpp"
#include "metagrad/meta/implicit.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/reduction.hpp"
#include "test_util.hpp"

using namespace metagrad;
using D = double;
using Tensors = std::vector<Tensor<D>>;
using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;

namespace {
constexpr std::int64_t n = 30, m = 15, d = 4;
constexpr double lambda0 = 0.5;

struct Ridge {
  Tensor<D> x, y, xv, yv;
  Ridge() {
    Generator gen(11);
    x = randn<D>({n, d}, gen);
    y = randn<D>({n, 1}, gen);
    xv = randn<D>({m, d}, gen);
    yv = randn<D>({m, 1}, gen);
  }
  Tensor<D> inner(const Tensors& p, const Tensor<D>& lambda) const {
    return add(mul(mse_loss(mm(x, p[0]), y), 0.5), mul(mul(sum(square(p[0])), lambda), 0.5));
  }
  Tensor<D> outer(const Tensors& p) const { return mul(mse_loss(mm(xv, p[0]), yv), 0.5); }

  Mat a() const { return to_eigen(x).transpose() * to_eigen(x) / n; }
  Vec theta_star(double lambda) const {
    const Vec b = to_eigen(x).transpose() * to_eigen(y) / n;
    return (a() + lambda * Mat::Identity(d, d)).ldlt().solve(b);
  }
  Vec outer_grad(const Vec& theta) const {
    const Mat xv_ = to_eigen(xv);
    return xv_.transpose() * (xv_ * theta - to_eigen(yv)) / m;
  }
  /// -gᵀ (A + (λ + damping) I)⁻¹ θ*: the exact hypergradient at damping 0.
  double closed_form(double lambda, double damping = 0) const {
    const Vec t = theta_star(lambda);
    return -outer_grad(t).dot((a() + (lambda + damping) * Mat::Identity(d, d)).ldlt().solve(t));
  }
  Tensors solution(double lambda) const { return {from_eigen(Mat(theta_star(lambda)))}; }
};

double implicit_at(const Ridge& r, const ImplicitOptions& o, ImplicitHypergradient<D>* out = nullptr) {
  auto lambda = scalar_tensor<D>(lambda0).requires_grad_();
  auto h = implicit_hypergradient<D>(
      r.solution(lambda0), [&](const Tensors& p) { return r.inner(p, lambda); },
      [&](const Tensors& p) { return r.outer(p); }, {lambda}, o);
  if (out) *out = h;
  return h.grads[0].item();
}
}  // namespace

TEST_SUITE("meta.implicit") {
  TEST_CASE("meta.implicit_hypergradient: conjugate gradient gives ridge regression's closed form") {
    const Ridge r;
    const double exact = r.closed_form(lambda0);
    ImplicitHypergradient<D> h;
    const double g = implicit_at(r, {.solver = ImplicitSolver::conjugate_gradient}, &h);
    CHECK(std::abs(exact) > 1e-3);
    CHECK(std::abs(g - exact) <= 1e-10 * std::abs(exact));
    CHECK(h.iterations <= d + 1);  // CG is exact in at most d steps, up to rounding
    CHECK(h.residual < 1e-10);
  }

  TEST_CASE("meta.implicit_hypergradient: the Neumann series converges to the closed form") {
    const Ridge r;
    const double exact = r.closed_form(lambda0);
    const double lmax = (r.a() + lambda0 * Mat::Identity(d, d)).selfadjointView<Eigen::Lower>().eigenvalues().maxCoeff();
    ImplicitOptions o{.solver = ImplicitSolver::neumann, .iterations = 5, .neumann_step = 1.0 / lmax};
    const double few = std::abs(implicit_at(r, o) - exact);
    o.iterations = 200;
    ImplicitHypergradient<D> h;
    const double many = std::abs(implicit_at(r, o, &h) - exact);
    CHECK(many < few);
    CHECK(many <= 1e-9 * std::abs(exact));
    CHECK(h.residual < 1e-9);
  }

  TEST_CASE("meta.implicit_hypergradient: damping solves the damped system") {
    const Ridge r;
    const double damping = 0.3;
    const double g = implicit_at(r, {.damping = damping});
    const double damped = r.closed_form(lambda0, damping);
    CHECK(std::abs(g - damped) <= 1e-10 * std::abs(damped));
    CHECK(std::abs(g - r.closed_form(lambda0)) > 1e-4);  // damping biases the answer
    // The Neumann series on the damped system agrees.
    const double lmax =
        (r.a() + (lambda0 + damping) * Mat::Identity(d, d)).selfadjointView<Eigen::Lower>().eigenvalues().maxCoeff();
    const double neumann = implicit_at(
        r, {.solver = ImplicitSolver::neumann, .iterations = 300, .damping = damping, .neumann_step = 1.0 / lmax});
    CHECK(std::abs(neumann - damped) <= 1e-9 * std::abs(damped));
  }

  TEST_CASE("meta.unrolled_hypergradient: converges to the implicit one as K grows (ridge)") {
    const Ridge r;
    const double exact = r.closed_form(lambda0);
    auto lambda = scalar_tensor<D>(lambda0).requires_grad_();
    const auto step = sgd_step<D>([&](const Tensors& p, std::int64_t) { return r.inner(p, lambda); }, 0.3);
    std::vector<double> errors;
    for (std::int64_t k : {5, 20, 80}) {
      const auto h = unrolled_hypergradient<D>({zeros<D>({d, 1})}, step, [&](const Tensors& p) { return r.outer(p); },
                                               {lambda}, {.steps = k});
      errors.push_back(std::abs(h.grads[0].item() - exact));
      MESSAGE("K = ", k, ": |unrolled - implicit| = ", errors.back());
    }
    CHECK(errors[1] < errors[0]);
    CHECK(errors[2] < errors[1]);
    CHECK(errors[2] < 1e-6 * std::abs(exact));
  }

  TEST_CASE("meta.implicit_hypergradient: bad input is reported") {
    const Ridge r;
    auto lambda = scalar_tensor<D>(lambda0).requires_grad_();
    auto inner = [&](const Tensors& p) { return r.inner(p, lambda); };
    auto outer = [&](const Tensors& p) { return r.outer(p); };
    METAGRAD_CHECK_ERROR(implicit_hypergradient<D>(r.solution(lambda0), inner, outer, {lambda}, {.damping = -1}),
                         "implicit_hypergradient", "damping");
    METAGRAD_CHECK_ERROR(implicit_hypergradient<D>(r.solution(lambda0), inner, outer, {lambda.detach()}),
                         "implicit_hypergradient", "does not require grad");
    METAGRAD_CHECK_ERROR(implicit_hypergradient<D>({}, inner, outer, {lambda}), "implicit_hypergradient", "empty");
  }
}
