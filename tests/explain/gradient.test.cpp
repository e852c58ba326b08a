// SPDX-License-Identifier: MIT
#include "metagrad/explain/gradient.hpp"
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/sequential.hpp"
#include "metagrad/nn/activation.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/unary.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using V = std::vector<Tensor<double>>;

TEST_SUITE("explain.gradient") {
  TEST_CASE("explain.gradient: gradient × input of a linear model is weight · input, exactly") {
    Generator gen(1);
    nn::Linear<double> net(5, 3, gen);
    const auto x = randn<double>(Shape{4, 5}, gen);
    const auto target = from_vector<std::int64_t>({2, 0, 1, 2}, Shape{4});
    const auto gxi = explain(GradientTimesInput{}, net, x, target);
    const auto g = explain(Gradient{}, net, x, target);
    for (std::int64_t n = 0; n < 4; ++n)
      for (std::int64_t i = 0; i < 5; ++i) {
        const double w = net.weight(target(n), i);
        CHECK(g(n, i) == w);
        CHECK(gxi(n, i) == w * x(n, i));
      }
  }

  TEST_CASE("explain.gradient: no target means the predicted class; any callable is a model") {
    Generator gen(2);
    const auto w = randn<double>(Shape{3, 4}, gen);
    auto model = [&](const Tensor<double>& x) { return linear(x, w); };
    const auto x = randn<double>(Shape{6, 4}, gen);
    const auto predicted = argmax(linear(x, w), 1);
    CHECK(allclose(Gradient{}(model, x), Gradient{}(model, x, predicted), 0, 0));
    CHECK(allclose(Gradient{}(model, x, predicted), index_select(w, 0, predicted), 0, 0));
    // A shared_ptr to a layer works too.
    auto net = std::make_shared<nn::Sequential<double>>();
    net->emplace_back<nn::Linear<double>>(4, 2, gen);
    CHECK(explain(Gradient{}, net, x).shape() == x.shape());
  }

  TEST_CASE("explain.gradient: RRR input-gradient penalty passes gradcheck in the parameters") {
    Generator gen(3);
    const auto x = randn<double>(Shape{3, 4}, gen);
    const auto mask = from_vector<double>({1, 0, 1, 0}, Shape{1, 4});
    const auto target = from_vector<std::int64_t>({0, 1, 1}, Shape{3});
    // Σ (mask ⊙ ∂logit/∂x)² of a tanh MLP, as a function of its four parameter tensors.
    auto penalty = [&](const V& p) {
      auto model = [&](const Tensor<double>& h) { return linear(tanh(linear(h, p[0], p[1])), p[2], p[3]); };
      const auto g = Gradient{}(model, x, target, {.create_graph = true});
      return sum(square(g * mask));
    };
    const V params{randn<double>(Shape{5, 4}, gen), randn<double>(Shape{5}, gen), randn<double>(Shape{2, 5}, gen),
                   randn<double>(Shape{2}, gen)};
    const auto result = gradcheck(penalty, params);
    CHECK_MESSAGE(result.ok, result.report);
    // Without create_graph the attribution is detached from the parameters.
    auto p0 = params[0].detach().requires_grad_();
    auto model = [&](const Tensor<double>& h) { return linear(tanh(linear(h, p0, params[1])), params[2], params[3]); };
    CHECK_FALSE(Gradient{}(model, x, target).requires_grad());
    CHECK(Gradient{}(model, x, target, {.create_graph = true}).requires_grad());
  }

  TEST_CASE("explain.gradient: bad input") {
    Generator gen(4);
    nn::Linear<double> net(3, 2, gen);
    const auto x = randn<double>(Shape{2, 3}, gen);
    METAGRAD_CHECK_ERROR(Gradient{}(net, x, from_vector<std::int64_t>({0, 1, 1}, Shape{3})), "Gradient", "[3]",
                         "[2, 3]");
    auto not_logits = [](const Tensor<double>& h) { return sum(h); };
    METAGRAD_CHECK_ERROR(Gradient{}(not_logits, x), "Gradient", "logits");
  }
}
