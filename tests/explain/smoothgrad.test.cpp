// SPDX-License-Identifier: MIT
#include "metagrad/explain/gradient.hpp"
#include "metagrad/explain/smoothgrad.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/unary.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

TEST_SUITE("explain.smoothgrad") {
  TEST_CASE("explain.smoothgrad: σ = 0 is the gradient; a linear model's is its weight row") {
    Generator gen(9);
    const auto w1 = randn<double>(Shape{6, 4}, gen), w2 = randn<double>(Shape{3, 6}, gen);
    auto net = [&](const Tensor<double>& x) { return linear(tanh(linear(x, w1)), w2); };
    const auto x = randn<double>(Shape{5, 4}, gen);
    const auto target = from_vector<std::int64_t>({0, 1, 2, 1, 0}, Shape{5});
    CHECK(allclose(SmoothGrad{.samples = 3, .sigma = 0}(net, x, target), Gradient{}(net, x, target), 1e-12, 1e-12));
    auto lin = [&](const Tensor<double>& h) { return linear(h, w1); };
    CHECK(allclose(SmoothGrad{.samples = 5, .sigma = 1.0}(lin, x, target), index_select(w1, 0, target), 1e-12, 1e-12));
  }

  TEST_CASE("explain.smoothgrad: reproducible by seed, chunk-independent, and smoother than the gradient") {
    Generator gen(10);
    const auto w1 = randn<double>(Shape{16, 4}, gen) * 3.0, w2 = randn<double>(Shape{2, 16}, gen);
    auto net = [&](const Tensor<double>& x) { return linear(relu(linear(x, w1)), w2); };
    const auto x = randn<double>(Shape{3, 4}, gen);
    const auto a = SmoothGrad{.samples = 8, .seed = 4}(net, x);
    CHECK(allclose(a, SmoothGrad{.samples = 8, .seed = 4}(net, x), 0, 0));
    CHECK_FALSE(allclose(a, SmoothGrad{.samples = 8, .seed = 5}(net, x), 1e-9, 0));
    // The average of many noisy gradients approaches the expected gradient: two seeds agree far
    // better with 400 samples than with 2.
    auto gap = [&](std::int64_t samples) {
      const auto d = SmoothGrad{.samples = samples, .sigma = 0.5, .seed = 1}(net, x) -
                     SmoothGrad{.samples = samples, .sigma = 0.5, .seed = 2}(net, x);
      return sum(square(d)).item();
    };
    CHECK(gap(400) < 0.1 * gap(2));
  }
}
