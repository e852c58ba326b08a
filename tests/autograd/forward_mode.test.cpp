// SPDX-License-Identifier: MIT
// Forward mode: make_dual / tangent_of, tangents under no_grad, detach, in-place refusals, and the
// derivatives forward mode buys, checked against reverse mode and finite differences in double:
// jvp, forward-over-reverse hvp on an MLP and a small CNN, reverse-over-forward, and third order.
// (Every op's tangent rule is gradchecked through tests/op_table.hpp and gradcheck itself.)
#include <memory>

#include "metagrad/autograd/forward.hpp"
#include "metagrad/functional/transforms.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/ops/conv.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/pool.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/optim/adam.hpp"
#include "metagrad/optim/clip.hpp"
#include "metagrad/optim/sgd.hpp"
#include "test_util.hpp"

namespace forward_mode_test {

using namespace metagrad;
using metagrad::testing::allclose;
using D = Tensor<double>;
using Vec = std::vector<D>;

/// A two-layer classifier's loss as a function of its parameters {w1, b1, w2, b2}.
struct Mlp {
  D x = randn<double>(Shape{6, 4}, gen());
  IndexTensor y = from_vector<std::int64_t>({0, 2, 1, 1, 0, 2});
  Vec params{randn<double>(Shape{5, 4}, gen()), randn<double>(Shape{5}, gen()), randn<double>(Shape{3, 5}, gen()),
             randn<double>(Shape{3}, gen())};
  static Generator& gen() {
    static Generator g(21);
    return g;
  }
  D loss(const Vec& p) const { return cross_entropy(linear(tanh(linear(x, p[0], p[1])), p[2], p[3]), y); }
  D loss_softplus(const Vec& p) const {
    return cross_entropy(linear(softplus(linear(x, p[0], p[1])), p[2], p[3]), y);
  }
};

/// conv (bias) -> tanh -> max pool -> linear -> cross entropy, as a function of {w, b, w_out}.
struct Cnn {
  D x = randn<double>(Shape{2, 2, 7, 7}, Mlp::gen());
  IndexTensor y = from_vector<std::int64_t>({1, 0});
  Vec params{mul(randn<double>(Shape{3, 2, 3, 3}, Mlp::gen()), 0.3), randn<double>(Shape{3}, Mlp::gen()),
             mul(randn<double>(Shape{2, 27}, Mlp::gen()), 0.3)};
  D loss(const Vec& p) const {
    const D h = max_pool2d(tanh(conv2d(x, p[0], p[1], 1, 1)), 2, 2);  // [2, 3, 7, 7] -> [2, 3, 3, 3]
    return cross_entropy(linear(reshape(h, {2, 27}), p[2]), y);
  }
};

Vec random_like(const Vec& xs, std::uint64_t seed) {
  Generator gen(seed);
  Vec out;
  for (const auto& x : xs) out.push_back(randn<double>(x.shape(), gen));
  return out;
}

Vec shifted(const Vec& xs, const Vec& vs, double eps) {
  Vec out;
  for (std::size_t i = 0; i < xs.size(); ++i) out.push_back(add(xs[i], mul(vs[i], eps)));
  return out;
}

bool all_close(const Vec& a, const Vec& b, double atol, double rtol) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!allclose(a[i], b[i], atol, rtol)) return false;
  return true;
}

}  // namespace forward_mode_test

using namespace forward_mode_test;

TEST_SUITE("autograd.forward_mode") {
  TEST_CASE("autograd.forward_mode: make_dual checks shapes and names itself") {
    const D x = zeros<double>(Shape{2, 3});
    METAGRAD_CHECK_ERROR(make_dual(x, zeros<double>(Shape{3, 2})), "make_dual", "[3, 2]", "[2, 3]");
    METAGRAD_CHECK_ERROR(make_dual(x, D()), "make_dual", "undefined", "[2, 3]");
    METAGRAD_CHECK_ERROR(make_dual(D(), x), "make_dual", "undefined");
  }

  TEST_CASE("autograd.forward_mode: tangents propagate under no_grad; detach drops them") {
    const D x = tensor<double>({0.5, -1.0, 2.0}), v = tensor<double>({1.0, 2.0, -0.5});
    NoGradGuard off;
    const D y = exp(make_dual(x, v) * 2.0);
    REQUIRE(tangent_of(y).defined());
    CHECK(allclose(tangent_of(y), exp(x * 2.0) * v * 2.0, 1e-14, 1e-14));
    CHECK(!y.requires_grad());
    CHECK(!tangent_of(y.detach()).defined());
    CHECK(!tangent_of(exp(x)).defined());  // no tangent in, none out
    // A constant operand contributes no term, but the result still has the output's shape.
    const D z = make_dual(tensor<double>({1.0}), tensor<double>({3.0})) + zeros<double>(Shape{2, 3});
    CHECK(allclose(tangent_of(z), full<double>(Shape{2, 3}, 3.0), 0.0, 0.0));
  }

  TEST_CASE("autograd.forward_mode: tangent computations are recorded unless TangentRecordingGuard says not") {
    const D x = tensor<double>({0.5, -1.0}).requires_grad_();
    const D v = tensor<double>({1.0, 2.0});
    CHECK(tangent_of(exp(make_dual(x, v))).requires_grad());  // differentiable: reverse over forward
    const TangentRecordingGuard off(false);                    // what hvp does without create_graph
    const D y = exp(make_dual(x, v));
    CHECK(y.requires_grad());  // the primal is still recorded
    CHECK(!tangent_of(y).requires_grad());
    CHECK(allclose(tangent_of(y), exp(x) * v, 0.0, 0.0));
  }

  TEST_CASE("autograd.forward_mode: reverse mode flows through a dual to its primal") {
    const D x = tensor<double>({0.5, -1.0}).requires_grad_();
    const D d = make_dual(x, tensor<double>({1.0, 1.0}));
    CHECK(allclose(metagrad::grad(sum(d * d), x), x * 2.0, 0.0, 0.0));
  }

  TEST_CASE("autograd.forward_mode: in-place writes to a tensor with a tangent are refused") {
    D d = make_dual(tensor<double>({1.0, 2.0}), tensor<double>({1.0, 0.0}));
    METAGRAD_CHECK_ERROR(d.mutable_data("fill_"), "fill_", "in-place op", "[2]", "forward-mode tangent");
    // An optimizer step would take a gradient's value and drop its tangent.
    D p = tensor<double>({1.0, 2.0}).requires_grad_();
    p.set_grad(make_dual(tensor<double>({0.1, 0.2}), tensor<double>({1.0, 1.0})));
    SGD<double> sgd({p}, {.lr = 0.1});
    METAGRAD_CHECK_ERROR(sgd.step(), "SGD", "in-place op", "forward-mode tangent");
    Adam<double> adam({p});
    METAGRAD_CHECK_ERROR(adam.step(), "Adam", "forward-mode tangent");
    METAGRAD_CHECK_ERROR(clip_grad_norm_(std::vector<D>{p}, 0.01), "clip_grad_norm_", "forward-mode tangent");
    CHECK(p(0) == 1.0);  // nothing was written
    nn::Linear<double> layer(2, 1);
    NamedTensors<double> state;
    state.insert("weight", make_dual(zeros<double>(Shape{1, 2}), ones<double>(Shape{1, 2})));
    state.insert("bias", zeros<double>(Shape{1}));
    METAGRAD_CHECK_ERROR(layer.load_state_dict(state), "load_state_dict", "forward-mode tangent");
  }

  TEST_CASE("autograd.forward_mode: jvp (forward) equals the double-vjp jvp on an MLP") {
    const Mlp m;
    const Vec vs = random_like(m.params, 3);
    auto f = [&](const Vec& p) { return m.loss(p); };
    const auto [y, jv] = jvp(f, m.params, vs);
    const auto [y2, jv2] = jvp_by_double_vjp(f, m.params, vs);
    CHECK(allclose(y, y2, 0.0, 0.0));
    CHECK(allclose(jv, jv2, 1e-13, 1e-12));
    // And the per-sample logits, a vector output.
    auto logits = [&](const D& w1) { return linear(tanh(linear(m.x, w1, m.params[1])), m.params[2]); };
    const auto [z, jz] = jvp(logits, m.params[0], vs[0]);
    const auto [z2, jz2] = jvp_by_double_vjp(logits, m.params[0], vs[0]);
    CHECK(allclose(jz, jz2, 1e-13, 1e-12));
  }

  TEST_CASE("autograd.forward_mode: hvp forward-over-reverse equals reverse-over-reverse, MLP and CNN") {
    const Mlp m;
    const Vec vs = random_like(m.params, 4);
    for (int act = 0; act < 2; ++act) {
      auto f = [&](const Vec& p) { return act == 0 ? m.loss(p) : m.loss_softplus(p); };
      CHECK(all_close(hvp(f, m.params, vs), hvp_reverse_over_reverse(f, m.params, vs), 1e-13, 1e-11));
    }
    const Cnn c;
    const Vec us = random_like(c.params, 5);
    auto g = [&](const Vec& p) { return c.loss(p); };
    const Vec fwd = hvp(g, c.params, us), rev = hvp_reverse_over_reverse(g, c.params, us);
    CHECK(all_close(fwd, rev, 1e-13, 1e-11));
    // Against finite differences of the gradient, so both are right, not just equal.
    const double eps = 1e-6;
    const Vec gp = grad(g, shifted(c.params, us, eps)), gm = grad(g, shifted(c.params, us, -eps));
    for (std::size_t i = 0; i < fwd.size(); ++i) CHECK(allclose(fwd[i], (gp[i] - gm[i]) / (2 * eps), 1e-7, 1e-5));
  }

  TEST_CASE("autograd.forward_mode: hvp with create_graph is differentiable, like reverse-over-reverse") {
    const Mlp m;
    const Vec vs = random_like(m.params, 6), us = random_like(m.params, 7);
    auto f = [&](const Vec& p) { return m.loss(p); };
    // d/dp <H(p) v, u>: reverse over forward over reverse vs reverse over reverse over reverse.
    auto contract = [&](bool forward) {
      return [&, forward](const Vec& p) {
        const Vec hv = forward ? hvp(f, p, vs, {.create_graph = true}) : hvp_reverse_over_reverse(f, p, vs, {.create_graph = true});
        D s = sum(hv[0] * us[0]);
        for (std::size_t i = 1; i < hv.size(); ++i) s = s + sum(hv[i] * us[i]);
        return s;
      };
    };
    CHECK(all_close(grad(contract(true), m.params), grad(contract(false), m.params), 1e-12, 1e-10));
  }

  TEST_CASE("autograd.forward_mode: reverse over forward: the gradient of a tangent is H v") {
    const Mlp m;
    const Vec vs = random_like(m.params, 8);
    Vec ps, duals;
    for (std::size_t i = 0; i < m.params.size(); ++i) {
      ps.push_back(m.params[i].detach().requires_grad_());
      duals.push_back(make_dual(ps[i], vs[i]));
    }
    const D directional = tangent_of(m.loss(duals));  // <grad, v>, recorded through output aliases
    REQUIRE(directional.requires_grad());
    const Vec hv = metagrad::grad(directional, ps);
    CHECK(all_close(hv, hvp_reverse_over_reverse([&](const Vec& p) { return m.loss(p); }, m.params, vs), 1e-13, 1e-11));
  }

  TEST_CASE("autograd.forward_mode: third order, forward over reverse-over-reverse, vs finite differences") {
    const Mlp m;
    const Vec vs = random_like(m.params, 9), us = random_like(m.params, 10);
    auto f = [&](const Vec& p) { return m.loss_softplus(p); };
    // The tangent along v of H u: D³f[v, u, ·].
    Vec ps, duals;
    for (std::size_t i = 0; i < m.params.size(); ++i) {
      ps.push_back(m.params[i].detach().requires_grad_());
      duals.push_back(make_dual(ps[i], vs[i]));
    }
    const Vec g = metagrad::grad(f(duals), duals, {.create_graph = true});
    D s = sum(g[0] * us[0]);
    for (std::size_t i = 1; i < g.size(); ++i) s = s + sum(g[i] * us[i]);
    const Vec hu = metagrad::grad(s, duals);
    const double eps = 1e-5;
    const Vec plus = hvp_reverse_over_reverse(f, shifted(m.params, vs, eps), us);
    const Vec minus = hvp_reverse_over_reverse(f, shifted(m.params, vs, -eps), us);
    for (std::size_t i = 0; i < hu.size(); ++i) {
      REQUIRE(tangent_of(hu[i]).defined());
      CHECK(allclose(tangent_of(hu[i]), (plus[i] - minus[i]) / (2 * eps), 1e-7, 1e-5));
    }
  }

  TEST_CASE("autograd.forward_mode: no reference cycle keeps a dual computation alive") {
    // An output's tangent is computed from the output (exp, tanh, ...) and recorded when something
    // requires grad; it reads an alias of the output, so dropping the output frees both.
    std::weak_ptr<TensorImpl<double>> output, tangent;
    const auto baseline = memory_stats().live_buffers;
    {
      const D x = tensor<double>({0.3, -0.2}).requires_grad_();
      const D y = tanh(exp(make_dual(x, tensor<double>({1.0, 2.0}))));
      REQUIRE(tangent_of(y).requires_grad());
      output = y.impl();
      tangent = y.impl()->tangent;
      const Mlp m;
      (void)hvp([&](const Vec& p) { return m.loss(p); }, m.params, random_like(m.params, 11));
    }
    CHECK(output.expired());
    CHECK(tangent.expired());
    CHECK(memory_stats().live_buffers == baseline);
  }
}
