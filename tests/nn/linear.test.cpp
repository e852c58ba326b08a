// SPDX-License-Identifier: MIT
#include "metagrad/autograd/engine.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/ops/reduction.hpp"
#include "layer_check.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

TEST_SUITE("nn.linear") {
  TEST_CASE("nn.Linear: shapes, over any number of leading dims, with and without bias") {
    Generator gen(3);
    nn::Linear<float> lin(5, 7, gen);
    CHECK(lin.weight.shape() == Shape{7, 5});
    CHECK(lin.bias.shape() == Shape{7});
    CHECK(lin(zeros<float>(Shape{4, 5})).shape() == Shape{4, 7});
    CHECK(lin(zeros<float>(Shape{2, 3, 5})).shape() == Shape{2, 3, 7});
    nn::Linear<float> no_bias(5, 7, gen, false);
    CHECK(no_bias.named_parameters().names() == std::vector<std::string>{"weight"});
    CHECK(allclose(no_bias(zeros<float>(Shape{1, 5})), zeros<float>(Shape{1, 7})));
  }

  TEST_CASE("nn.Linear: value and gradients against a hand computation (2 -> 3)") {
    Generator gen(3);
    nn::Linear<double> lin(2, 3, gen);
    lin.load_state_dict({{"weight", tensor<double>({{1, 2}, {3, 4}, {5, 6}})}, {"bias", tensor<double>({0.1, 0.2, 0.3})}});
    auto x = tensor<double>({{1, -1}}).requires_grad_();
    const auto y = lin(x);
    CHECK(allclose(y, tensor<double>({{-0.9, -0.8, -0.7}}), 1e-15, 0));
    // L = Σ c ⊙ y: dW = c xᵀ, db = c, dx = Wᵀ c.
    const auto c = tensor<double>({{1, 2, 3}});
    const auto g = grad(sum(y * c), std::vector{x, lin.weight, lin.bias});
    CHECK(allclose(g[0], tensor<double>({{22, 28}}), 0, 0));
    CHECK(allclose(g[1], tensor<double>({{1, -1}, {2, -2}, {3, -3}}), 0, 0));
    CHECK(allclose(g[2], tensor<double>({1, 2, 3}), 0, 0));
  }

  TEST_CASE("nn.Linear: gradcheck to second order w.r.t. input and parameters") {
    Generator gen(4);
    nn::Linear<double> lin(3, 2, gen);
    metagrad::testing::check_layer_gradients(lin, rand<double>(Shape{4, 3}, gen, -1, 1));
    nn::Linear<double> no_bias(3, 2, gen, false);
    metagrad::testing::check_layer_gradients(no_bias, rand<double>(Shape{2, 2, 3}, gen, -1, 1));
  }

  TEST_CASE("nn.Linear: PyTorch's default init keeps weight and bias within 1/sqrt(in)") {
    Generator gen(5);
    nn::Linear<double> lin(50, 40, gen);
    const double bound = 1 / std::sqrt(50.0);
    double max_w = 0;
    for (double w : lin.weight.values()) max_w = std::max(max_w, std::abs(w));
    CHECK(max_w <= bound);
    CHECK(max_w > 0.98 * bound);  // 2000 draws fill the interval
    for (double b : lin.bias.values()) CHECK(std::abs(b) <= bound);
  }

  TEST_CASE("nn.Linear: a mismatched input is an error naming both shapes") {
    Generator gen(3);
    nn::Linear<float> lin(5, 7, gen);
    METAGRAD_CHECK_ERROR(lin(zeros<float>(Shape{4, 6})), "linear", "[4, 6]", "[7, 5]");
    METAGRAD_CHECK_ERROR(nn::Linear<float>(0, 3, gen), "Linear", "positive");
  }
}

TEST_SUITE("nn.linear") {
  TEST_CASE("nn.Linear: nn::Linear fc(784, 256) is a float layer drawn from the default generator") {
    manual_seed(5);
    nn::Linear fc(784, 256);
    static_assert(std::is_same_v<decltype(fc), nn::Linear<float>>);
    static_assert(std::is_same_v<decltype(fc.weight), Tensor<float>>);
    CHECK(fc.weight.shape() == Shape{256, 784});
    CHECK(fc.bias.shape() == Shape{256});
    // manual_seed(5) puts the default generator where Generator(5) starts.
    Generator gen(5);
    nn::Linear<float> explicit_stream(784, 256, gen);
    CHECK(metagrad::testing::same(fc.weight, explicit_stream.weight));
    CHECK(metagrad::testing::same(fc.bias, explicit_stream.bias));
    // The stream goes on: a second layer differs, and reseeding replays the first.
    nn::Linear next(784, 256);
    CHECK_FALSE(metagrad::testing::same(next.weight, fc.weight));
    manual_seed(5);
    nn::Linear again(784, 256);
    CHECK(metagrad::testing::same(again.weight, fc.weight));
    nn::Linear<double> no_bias(3, 2, false);
    CHECK_FALSE(no_bias.bias.defined());
  }
}
