// SPDX-License-Identifier: MIT
#include "metagrad/explain/ibp.hpp"
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/ops/binary.hpp"
#include "metagrad/ops/loss.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using V = std::vector<Tensor<double>>;

namespace {
std::shared_ptr<nn::Sequential<double>> ibp_cnn(Generator& gen) {
  auto net = std::make_shared<nn::Sequential<double>>();
  net->emplace_back<nn::Conv2d<double>>(1, 3, Size2d{3}, gen, nn::Conv2dOptions{.padding = 1});
  net->emplace_back<nn::ReLU<double>>();
  net->emplace_back<nn::MaxPool2d<double>>(Size2d{2});
  net->emplace_back<nn::Conv2d<double>>(3, 4, Size2d{2}, gen);
  net->emplace_back<nn::Tanh<double>>();
  net->emplace_back<nn::AvgPool2d<double>>(Size2d{2});
  net->emplace_back<nn::Flatten<double>>();
  net->emplace_back<nn::Linear<double>>(4, 6, gen);
  net->emplace_back<nn::Sigmoid<double>>();
  net->emplace_back<nn::Linear<double>>(6, 3, gen);
  return net;
}
bool inside(const Tensor<double>& y, const Bounds<double>& b) {
  for (std::int64_t i = 0; i < y.numel(); ++i)
    if (!(b.lower.data()[i] <= y.data()[i] + 1e-12 && y.data()[i] <= b.upper.data()[i] + 1e-12)) return false;
  return true;
}
}  // namespace

TEST_SUITE("explain.ibp") {
  TEST_CASE("explain.ibp: the bounds contain the outputs of 1,000 random perturbations in the box") {
    Generator gen(21);
    auto net = ibp_cnn(gen);
    const auto x = randn<double>(Shape{2, 1, 6, 6}, gen);
    const auto mask = bernoulli<double>(Shape{1, 1, 6, 6}, 0.5, gen);
    const double eps = 0.3;
    const auto b = interval_bounds(*net, x, eps, mask);
    CHECK(inside(net->forward(x), b));
    int outside = 0;
    for (int k = 0; k < 1000; ++k) {
      // Corners of the box are the hardest points; mix them with interior ones.
      const auto u = k % 2 ? rand<double>(x.shape(), gen, -1.0, 1.0) : bernoulli<double>(x.shape(), 0.5, gen) * 2.0 - 1.0;
      if (!inside(net->forward(x + u * mask * eps), b)) ++outside;
    }
    CHECK(outside == 0);
  }

  TEST_CASE("explain.ibp: ε = 0 gives equal bounds; bounds tighten monotonically as ε shrinks") {
    Generator gen(22);
    auto net = ibp_cnn(gen);
    const auto x = randn<double>(Shape{3, 1, 6, 6}, gen);
    const auto mask = ones<double>(Shape{1, 1, 6, 6});
    const auto b0 = interval_bounds(*net, x, 0.0, mask);
    CHECK(allclose(b0.lower, b0.upper, 1e-12, 0));
    CHECK(allclose(b0.lower, net->forward(x), 1e-12, 1e-12));
    Tensor<double> previous;
    for (double eps : {1.0, 0.5, 0.25, 0.1, 0.01}) {
      const auto w = interval_bounds(*net, x, eps, mask).width();
      if (previous.defined()) {
        INFO("eps ", eps);
        CHECK(allclose(minimum(w, previous), w, 0, 0));  // w <= previous elementwise
        CHECK(sum(w).item() < sum(previous).item());
      }
      previous = w;
    }
  }

  TEST_CASE("explain.ibp: the worst-case logits pick the lower bound for the target only") {
    const Bounds<double> b{tensor<double>({{1.0, 2.0, 3.0}}), tensor<double>({{4.0, 5.0, 6.0}})};
    CHECK(allclose(worst_case_logits(b, from_vector<std::int64_t>({1}, Shape{1})), tensor<double>({{4.0, 2.0, 6.0}}),
                   0, 0));
  }

  TEST_CASE("explain.ibp: the IBP-Ex worst-case loss passes gradcheck in the parameters") {
    Generator gen(23);
    auto net = ibp_cnn(gen);
    const auto x = randn<double>(Shape{2, 1, 6, 6}, gen);
    const auto mask = bernoulli<double>(Shape{1, 1, 6, 6}, 0.5, gen);
    const auto y = from_vector<std::int64_t>({0, 2}, Shape{2});
    auto loss = [&](const V& p) {
      ParameterOverride<double> scope(*net, std::span<const Tensor<double>>(p));
      return cross_entropy(worst_case_logits(interval_bounds(*net, x, 0.2, mask), y), y);
    };
    const auto result = gradcheck(loss, net->parameters());
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("explain.ibp: bad input") {
    Generator gen(24);
    nn::Sequential<double> net;
    net.emplace_back<nn::Linear<double>>(3, 3, gen);
    net.emplace_back<nn::GELU<double>>();
    const auto x = randn<double>(Shape{2, 3}, gen);
    METAGRAD_CHECK_ERROR(interval_bounds(net, x, 0.1, ones<double>(Shape{3})), "interval_bounds", "GELU");
    METAGRAD_CHECK_ERROR(interval_bounds(net, x, -0.1, ones<double>(Shape{3})), "interval_bounds", "eps");
    METAGRAD_CHECK_ERROR(interval_bounds(net, x, x.detach() * 2.0 + zeros<double>(Shape{1, 1, 3})), "interval_bounds",
                         "[2, 3]", "[1, 2, 3]");
  }
}
