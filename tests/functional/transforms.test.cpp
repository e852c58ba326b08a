// SPDX-License-Identifier: MIT
#include <cmath>

#include "metagrad/functional/transforms.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"
#include "test_util.hpp"

using namespace metagrad;
using D = Tensor<double>;
using Vec = std::vector<D>;

namespace {

/// Largest |a - b| / max(1, |b|) over the elements; shapes must agree.
double max_err(const D& a, const D& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]) / std::max(1.0, std::abs(b.data()[i])));
  return worst;
}

D vector_of(const Eigen::VectorXd& v) {
  return from_vector<double>(std::vector<double>(v.data(), v.data() + v.size()));
}

bool detached(const D& t) { return t.defined() && !t.requires_grad() && !t.grad_fn(); }

/// A dense-Jacobian vector function for the jvp/vjp/jacobian identities: y = tanh(A x) ⊙ x.
auto mixer(const D& a) {
  return [a](const D& x) { return tanh(matmul(a, x)) * x; };
}

/// f(x) = Σ x² eˣ, separable, so its k-th derivative tensor is diagonal with
/// f'' = eˣ(x² + 4x + 2), f''' = eˣ(x² + 6x + 6), f'''' = eˣ(x² + 8x + 12).
D x2_exp(const D& x) { return sum(x * x * exp(x)); }
double x2_exp_derivative(double x, int k) { return std::exp(x) * (x * x + 2 * k * x + k * (k - 1)); }

}  // namespace

// Eigen references use lazyProduct (plain loops): Eigen's GEMM kernels would double this file's
// compile time, and the sizes here are tiny.
TEST_SUITE("functional.transforms") {
  TEST_CASE("functional.hessian: of xᵀAx is A + Aᵀ") {
    Generator gen(11);
    const auto a = randn<double>(Shape{5, 5}, gen);
    const auto x = randn<double>(Shape{5}, gen);
    const auto h = hessian([&](const D& v) { return sum(v * matmul(a, v)); }, x);
    const auto ea = to_eigen(a);
    const RowMatrix<double> expected = ea + ea.transpose();
    CHECK(max_err(h, from_eigen(expected)) == 0.0);  // sums of exact products: no rounding at all
    CHECK(detached(h));
  }

  TEST_CASE("functional.hessian: logistic-regression loss is Xᵀ diag(p(1-p)) X / n") {
    Generator gen(5);
    const std::int64_t n = 9, d = 4;
    const auto xs = randn<double>(Shape{n, d}, gen);
    const auto labels = bernoulli<double>(Shape{n}, 0.5, gen);
    const auto w = mul(randn<double>(Shape{d}, gen), 0.5);
    auto loss = [&](const D& weights) {
      const auto p = sigmoid(matmul(xs, weights));
      return neg(mean(labels * log(p) + (1.0 - labels) * log(1.0 - p)));
    };
    const auto ex = to_eigen(xs);
    const Eigen::VectorXd z = ex.lazyProduct(to_eigen(w));
    const Eigen::ArrayXd p = 1.0 / (1.0 + (-z.array()).exp());
    const Eigen::ArrayXd y = to_eigen(labels).array();

    const RowMatrix<double> weighted = (p * (1 - p)).matrix().asDiagonal() * ex;
    const RowMatrix<double> expected_h = ex.transpose().lazyProduct(weighted) / double(n);
    CHECK(max_err(hessian(loss, w), from_eigen(expected_h)) <= 1e-14);

    auto [value, g] = value_and_grad(loss, w);
    CHECK(max_err(g, vector_of(ex.transpose().lazyProduct((p - y).matrix()) / double(n))) <= 1e-14);
    CHECK(value.item() == doctest::Approx(-(y * p.log() + (1 - y) * (1 - p).log()).mean()).epsilon(1e-14));
  }

  TEST_CASE("functional.hvp: equals hessian · v") {
    Generator gen(3);
    const auto a = randn<double>(Shape{6, 6}, gen);
    const auto x = randn<double>(Shape{6}, gen), v = randn<double>(Shape{6}, gen);
    auto f = [&](const D& t) { return sum(tanh(matmul(a, t)) * t) + sum(t * t * t * t); };
    const auto hv = hvp(f, x, v);
    CHECK(max_err(hv, matmul(hessian(f, x), v)) <= 1e-14);
    CHECK(detached(hv));
  }

  TEST_CASE("functional.jvp: equals jacobian · v, and vjp equals vᵀ · jacobian") {
    Generator gen(4);
    const auto a = randn<double>(Shape{5, 5}, gen);
    const auto x = randn<double>(Shape{5}, gen), v = randn<double>(Shape{5}, gen);
    const auto f = mixer(a);
    const auto j = jacobian(f, x);
    CHECK(j.shape() == Shape{5, 5});

    auto [y, jv] = jvp(f, x, v);
    CHECK(max_err(y, f(x)) == 0.0);
    CHECK(max_err(jv, matmul(j, v)) <= 1e-15);

    auto [y2, vj] = vjp(f, x, v);
    CHECK(max_err(y2, f(x)) == 0.0);
    CHECK(max_err(vj, matmul(v, j)) <= 1e-15);
    CHECK((detached(y) && detached(jv) && detached(y2) && detached(vj)));

    // The Jacobian itself, against its closed form diag(tanh(Ax)) + diag(x (1 - tanh²(Ax))) A.
    const Eigen::VectorXd ex = to_eigen(x), t = to_eigen(a).lazyProduct(ex).array().tanh();
    const RowMatrix<double> expected = RowMatrix<double>(t.asDiagonal()) +
                                       (ex.array() * (1 - t.array().square())).matrix().asDiagonal() * to_eigen(a);
    CHECK(max_err(j, from_eigen(expected)) <= 1e-15);
  }

  TEST_CASE("functional.jacobian: shape is out.shape ++ x.shape") {
    const auto x = tensor<double>({{0.1, -0.2, 0.3}, {0.4, -0.5, 0.6}});
    const auto j = jacobian([](const D& t) { return tanh(t); }, x);
    REQUIRE(j.shape() == Shape{2, 3, 2, 3});
    for (std::int64_t p = 0; p < 6; ++p)
      for (std::int64_t q = 0; q < 6; ++q) {
        const double th = std::tanh(x.data()[q]);
        CHECK(j.data()[p * 6 + q] == doctest::Approx(p == q ? 1 - th * th : 0.0).epsilon(1e-15));
      }
    // A scalar output gives the gradient's shape; a matrix of a vector gives [m, n, k].
    CHECK(jacobian([](const D& t) { return sum(t); }, x).shape() == Shape{2, 3});
    CHECK(jacobian([](const D& t) { return reshape(t, {3, 2}); }, x).shape() == Shape{3, 2, 2, 3});
  }

  TEST_CASE("functional: third and fourth derivatives of Σ x² eˣ by nesting transforms") {
    const auto x = tensor<double>({-1.5, 0.25, 2.0});
    TransformOptions keep{.create_graph = true};
    // Third: the jacobian of the hessian, a [3, 3, 3] tensor, diagonal.
    const auto t3 = jacobian([&](const D& t) { return hessian(x2_exp, t, keep); }, x);
    REQUIRE(t3.shape() == Shape{3, 3, 3});
    for (std::int64_t i = 0; i < 3; ++i)
      for (std::int64_t j = 0; j < 3; ++j)
        for (std::int64_t k = 0; k < 3; ++k)
          CHECK(t3(i, j, k) == doctest::Approx(i == j && j == k ? x2_exp_derivative(x(i), 3) : 0.0).epsilon(1e-14));
    // Fourth: the hessian of the hessian's trace.
    const auto t4 = hessian([&](const D& t) { return sum(hessian(x2_exp, t, keep) * eye<double>(3)); }, x);
    for (std::int64_t i = 0; i < 3; ++i)
      for (std::int64_t j = 0; j < 3; ++j)
        CHECK(t4(i, j) == doctest::Approx(i == j ? x2_exp_derivative(x(i), 4) : 0.0).epsilon(1e-14));
    // And the second derivative itself, for completeness of the chain.
    const auto h = hessian(x2_exp, x);
    for (std::int64_t i = 0; i < 3; ++i) CHECK(h(i, i) == doctest::Approx(x2_exp_derivative(x(i), 2)).epsilon(1e-14));
  }

  TEST_CASE("functional.grad: of an hvp is the third derivative along v") {
    const auto x = tensor<double>({-0.5, 1.0, 0.75}), v = tensor<double>({2.0, -1.0, 3.0});
    const auto g = grad([&](const D& t) { return sum(hvp(x2_exp, t, v, {.create_graph = true})); }, x);
    for (std::int64_t i = 0; i < 3; ++i) CHECK(g(i) == doctest::Approx(x2_exp_derivative(x(i), 3) * v(i)).epsilon(1e-14));
  }

  TEST_CASE("functional.jvp: nests (the jvp of a grad is an hvp)") {
    Generator gen(8);
    const auto x = randn<double>(Shape{4}, gen), v = randn<double>(Shape{4}, gen);
    auto f = [](const D& t) { return sum(tanh(t) * t * t); };
    auto [g, hv] = jvp([&](const D& t) { return grad(f, t, {.create_graph = true}); }, x, v);
    CHECK(max_err(hv, hvp(f, x, v)) <= 1e-15);
    CHECK(max_err(g, grad(f, x)) == 0.0);
  }

  TEST_CASE("functional: vector inputs give per-input gradients and Hessian blocks") {
    const auto a = tensor<double>({1.0, -2.0, 0.5}), b = tensor<double>({3.0, 0.25, -1.0});
    auto f = [](const Vec& t) { return sum(t[0] * t[0] * t[1]); };  // a² b
    const auto gs = grad(f, Vec{a, b});
    REQUIRE(gs.size() == 2);
    CHECK(max_err(gs[0], 2.0 * a * b) == 0.0);
    CHECK(max_err(gs[1], a * a) == 0.0);

    const auto h = hessian(f, Vec{a, b});
    REQUIRE((h.size() == 2 && h[0].size() == 2 && h[1].size() == 2));
    const auto diag = [](const D& d) { return eye<double>(3) * reshape(d, {3, 1}); };
    CHECK(max_err(h[0][0], diag(2.0 * b)) == 0.0);
    CHECK(max_err(h[0][1], diag(2.0 * a)) == 0.0);
    CHECK(max_err(h[1][0], diag(2.0 * a)) == 0.0);
    CHECK(max_err(h[1][1], zeros<double>(Shape{3, 3})) == 0.0);

    const auto va = tensor<double>({1.0, 0.0, 2.0}), vb = tensor<double>({-1.0, 1.0, 0.5});
    const auto hv = hvp(f, Vec{a, b}, Vec{va, vb});
    CHECK(max_err(hv[0], matmul(h[0][0], va) + matmul(h[0][1], vb)) == 0.0);
    CHECK(max_err(hv[1], matmul(h[1][0], va) + matmul(h[1][1], vb)) == 0.0);

    auto g2 = [](const Vec& t) { return t[0] * t[1]; };
    const auto js = jacobian(g2, Vec{a, b});
    CHECK(max_err(js[0], diag(b)) == 0.0);
    CHECK(max_err(js[1], diag(a)) == 0.0);
    auto [y, jv] = jvp(g2, Vec{a, b}, Vec{va, vb});
    CHECK(max_err(jv, va * b + a * vb) == 0.0);
    auto [y2, vjs] = vjp(g2, Vec{a, b}, va);
    CHECK(max_err(vjs[0], va * b) == 0.0);
    CHECK(max_err(vjs[1], va * a) == 0.0);
    auto [value, vg] = value_and_grad(f, Vec{a, b});
    CHECK(value.item() == doctest::Approx(1 * 3.0 + 4 * 0.25 - 0.25));
  }

  TEST_CASE("functional: inputs a function ignores get zero derivatives, not an error") {
    const auto a = tensor<double>({1.0, 2.0}), b = tensor<double>({3.0});
    const auto gs = grad([](const Vec& t) { return sum(t[0] * t[0]); }, Vec{a, b});
    CHECK(max_err(gs[1], zeros<double>(Shape{1})) == 0.0);
    const auto c = tensor<double>({5.0});
    CHECK(max_err(grad([&](const D&) { return c * 2.0; }, a), zeros<double>(Shape{2})) == 0.0);
    CHECK(max_err(hessian([](const D& t) { return sum(t * 3.0); }, a), zeros<double>(Shape{2, 2})) == 0.0);
    CHECK(max_err(hvp([](const D& t) { return sum(t * 3.0); }, a, a), zeros<double>(Shape{2})) == 0.0);
    auto [y, jv] = jvp([&](const D&) { return c; }, a, a);
    CHECK(max_err(jv, zeros<double>(Shape{1})) == 0.0);
    // The identity: J = I.
    CHECK(max_err(jacobian([](const D& t) { return t; }, a), eye<double>(2)) == 0.0);
    auto [yi, ji] = jvp([](const D& t) { return t; }, a, b * a);
    CHECK(max_err(ji, b * a) == 0.0);
  }

  TEST_CASE("functional: captured tensors are constants of the function") {
    auto x = tensor<double>({1.0, 2.0}).requires_grad_();
    const auto y = x * 3.0;  // depends on x, but f sees it as a constant
    const auto g = grad([&](const D& t) { return sum(t * y); }, x);
    CHECK(max_err(g, tensor<double>({3.0, 6.0})) == 0.0);
    // The outer graph survives: y can still be differentiated.
    CHECK(max_err(metagrad::grad(sum(y), x), tensor<double>({3.0, 3.0})) == 0.0);
  }

  TEST_CASE("functional: create_graph=true keeps results differentiable w.r.t. captured tensors") {
    // The meta-learning pattern: an inner gradient, differentiated with respect to a hyperparameter.
    auto w = tensor<double>({0.5, -1.5}).requires_grad_();
    const auto x = tensor<double>({2.0, 3.0});
    const auto g = grad([&](const D& t) { return sum(w * t * t); }, x, {.create_graph = true});  // 2 w x
    REQUIRE(g.requires_grad());
    CHECK(max_err(metagrad::grad(sum(g), w), 2.0 * x) == 0.0);
    // Without create_graph the same call returns a constant.
    CHECK(detached(grad([&](const D& t) { return sum(w * t * t); }, x)));
  }

  TEST_CASE("functional: create_graph=false results are detached even when inputs require grad") {
    auto x = tensor<double>({0.3, -0.7}).requires_grad_();
    auto f = [](const D& t) { return sum(exp(t) * t); };
    auto [value, g] = value_and_grad(f, x);
    CHECK((detached(value) && detached(g)));
    CHECK(detached(grad(f, x)));
    CHECK(detached(hessian(f, x)));
    CHECK(detached(hvp(f, x, x)));
    CHECK(detached(jacobian([](const D& t) { return exp(t); }, x)));
    CHECK(x.is_leaf());
    CHECK(!x.grad().defined());  // transforms return gradients; they never accumulate into .grad
  }

  TEST_CASE("functional: no graph outlives a create_graph=false call") {
    const auto x = tensor<double>({0.3, -0.7, 1.1});
    auto f = [](const D& t) { return sum(tanh(t) * exp(t)); };
    const auto baseline = memory_stats().live_buffers;
    {
      const auto h = hessian(f, x);
      const auto hv = hvp(f, x, x);
      auto [y, jv] = jvp([](const D& t) { return tanh(t); }, x, x);
      // What is alive now is the results (and what they share), not a graph.
      CHECK(memory_stats().live_buffers - baseline <= 5);
    }
    CHECK(memory_stats().live_buffers == baseline);
    {
      const auto nested = jacobian([&](const D& t) { return hessian(f, t, {.create_graph = true}); }, x);
    }
    CHECK(memory_stats().live_buffers == baseline);
  }

  TEST_CASE("functional: transforms work inside a NoGradGuard") {
    NoGradGuard off;
    const auto x = tensor<double>({1.0, 2.0});
    CHECK(max_err(grad([](const D& t) { return sum(t * t); }, x), tensor<double>({2.0, 4.0})) == 0.0);
    CHECK(!GradMode::enabled());  // and the guard's state is restored afterwards
  }

  TEST_CASE("functional: float tensors") {
    // grad and hvp only: a float hessian would instantiate the stacking ops again for float,
    // which costs this file's compile time more than it adds coverage (the code is generic).
    const auto x = tensor<float>({0.5f, -1.0f});
    auto cube = [](const Tensor<float>& t) { return sum(t * t * t); };
    const auto g = grad(cube, x);
    CHECK(g(0) == 0.75f);
    CHECK(g(1) == 3.0f);
    const auto hv = hvp(cube, x, tensor<float>({1.0f, 2.0f}));  // 6 x v
    CHECK(hv(0) == 3.0f);
    CHECK(hv(1) == -12.0f);
  }

  TEST_CASE("functional: bad input names the transform and the shapes") {
    const auto x = tensor<double>({1.0, 2.0, 3.0});
    auto identity = [](const D& t) { return t * 2.0; };
    METAGRAD_CHECK_ERROR(grad(identity, x), "grad", "one-element", "[3]");
    METAGRAD_CHECK_ERROR(value_and_grad(identity, x), "value_and_grad", "[3]");
    METAGRAD_CHECK_ERROR(hessian(identity, x), "hessian", "[3]");
    METAGRAD_CHECK_ERROR(hvp([](const D& t) { return sum(t); }, x, tensor<double>({1.0})), "hvp", "[1]", "[3]");
    METAGRAD_CHECK_ERROR(vjp(identity, x, tensor<double>({1.0, 2.0})), "vjp", "[2]", "[3]");
    METAGRAD_CHECK_ERROR(jvp(identity, x, tensor<double>({1.0, 2.0})), "jvp", "[2]", "[3]");
    METAGRAD_CHECK_ERROR(jvp([](const Vec& t) { return t[0]; }, Vec{x}, Vec{}), "jvp", "1 inputs but 0");
    METAGRAD_CHECK_ERROR(grad([](const D&) { return D(); }, x), "grad", "undefined");
    METAGRAD_CHECK_ERROR(grad(identity, D()), "grad", "undefined");
  }
}
