// SPDX-License-Identifier: MIT
#include <cmath>

#include "metagrad/explain/integrated_gradients.hpp"
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/unary.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using V = std::vector<Tensor<double>>;

namespace {
struct TanhNet {
  Tensor<double> w1, b1, w2, b2;
  Tensor<double> operator()(const Tensor<double>& x) const { return linear(tanh(linear(x, w1, b1)), w2, b2); }
};
TanhNet make_net(Generator& gen) {
  return {randn<double>(Shape{8, 5}, gen), randn<double>(Shape{8}, gen), randn<double>(Shape{3, 8}, gen),
          randn<double>(Shape{3}, gen)};
}
/// max over examples of |Σ_i attribution − (f(x) − f(b))| for the target logit.
double completeness_error(const Tensor<double>& attr, const Tensor<double>& fx, const Tensor<double>& fb,
                          const IndexTensor& target) {
  double worst = 0;
  for (std::int64_t n = 0; n < attr.size(0); ++n) {
    double s = 0;
    for (std::int64_t i = 0; i < attr.size(1); ++i) s += attr(n, i);
    worst = std::max(worst, std::abs(s - (fx(n, target(n)) - fb(n, target(n)))));
  }
  return worst;
}
}  // namespace

TEST_SUITE("explain.integrated_gradients") {
  TEST_CASE("explain.integrated_gradients: completeness, error shrinking with steps") {
    Generator gen(5);
    const auto net = make_net(gen);
    const auto x = randn<double>(Shape{4, 5}, gen);
    const auto baseline = randn<double>(Shape{1, 5}, gen) * 0.3;
    const auto target = from_vector<std::int64_t>({0, 1, 2, 0}, Shape{4});
    const auto fx = net(x), fb = net(broadcast_to(baseline, x.shape()));
    double previous = INFINITY;
    for (std::int64_t steps : {4, 16, 64}) {
      const auto attr = IntegratedGradients{.steps = steps}(net, x, target, baseline);
      const double err = completeness_error(attr, fx, fb, target);
      INFO("steps ", steps, " error ", err);
      CHECK(err < previous);
      previous = err;
    }
    CHECK(previous < 1e-3);  // midpoint rule: O(1/steps²)
  }

  TEST_CASE("explain.integrated_gradients: chunking does not change the result; linear model is exact") {
    Generator gen(6);
    const auto net = make_net(gen);
    const auto x = randn<double>(Shape{3, 5}, gen);
    const auto a = IntegratedGradients{.steps = 10, .max_batch = 1}(net, x);
    const auto b = IntegratedGradients{.steps = 10, .max_batch = 7}(net, x);
    const auto c = IntegratedGradients{.steps = 10, .max_batch = 1000}(net, x);
    CHECK(allclose(a, c, 1e-12, 1e-12));
    CHECK(allclose(b, c, 1e-12, 1e-12));
    // For f = W x + b, IG with baseline 0 is W[target] ⊙ x for any number of steps.
    const auto w = randn<double>(Shape{3, 5}, gen), bias = randn<double>(Shape{3}, gen);
    auto lin = [&](const Tensor<double>& h) { return linear(h, w, bias); };
    const auto target = from_vector<std::int64_t>({1, 2, 0}, Shape{3});
    CHECK(allclose(IntegratedGradients{.steps = 3}(lin, x, target), index_select(w, 0, target) * x, 1e-12, 1e-12));
  }

  TEST_CASE("explain.integrated_gradients: a loss on IG passes gradcheck in the parameters") {
    Generator gen(7);
    const auto x = randn<double>(Shape{2, 5}, gen);
    const auto target = from_vector<std::int64_t>({2, 1}, Shape{2});
    auto loss = [&](const V& p) {
      const TanhNet net{p[0], p[1], p[2], p[3]};
      return sum(square(IntegratedGradients{.steps = 3, .max_batch = 4}(net, x, target, {.create_graph = true})));
    };
    const auto net = make_net(gen);
    const auto result = gradcheck(loss, V{net.w1, net.b1, net.w2, net.b2});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("explain.integrated_gradients: bad input") {
    Generator gen(8);
    const auto net = make_net(gen);
    const auto x = randn<double>(Shape{2, 5}, gen);
    METAGRAD_CHECK_ERROR(IntegratedGradients{.steps = 0}(net, x), "IntegratedGradients", "steps");
    METAGRAD_CHECK_ERROR(IntegratedGradients{}(net, x, {}, zeros<double>(Shape{3})), "broadcast_to", "[3]");
  }
}
