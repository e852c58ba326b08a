// SPDX-License-Identifier: MIT
#include <cmath>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/nn/conv.hpp"
#include "layer_check.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

namespace {
Tensor<double> image(std::initializer_list<std::initializer_list<double>> rows) {
  const auto m = tensor<double>(rows);
  return reshape(m, Shape{1, 1, m.size(0), m.size(1)});
}
}  // namespace

TEST_SUITE("nn.conv") {
  TEST_CASE("nn.Conv2d / ConvTranspose2d: output shapes of FLINT's encoder and decoder") {
    Generator gen(1);
    nn::Conv2d<float> c1(1, 16, 3, gen, {.padding = 1});
    CHECK(c1.weight.shape() == Shape{16, 1, 3, 3});
    CHECK(c1(zeros<float>(Shape{2, 1, 28, 28})).shape() == Shape{2, 16, 28, 28});
    nn::Conv2d<float> strided(3, 4, {2, 3}, gen, {.stride = 2, .bias = false});
    CHECK(strided.named_parameters().names() == std::vector<std::string>{"weight"});
    CHECK(strided(zeros<float>(Shape{1, 3, 9, 9})).shape() == Shape{1, 4, 4, 4});
    nn::ConvTranspose2d<float> up(2, 8, 3, gen, {.stride = 2, .padding = 1, .output_padding = 1});
    CHECK(up.weight.shape() == Shape{2, 8, 3, 3});
    CHECK(up(zeros<float>(Shape{1, 2, 7, 7})).shape() == Shape{1, 8, 14, 14});
  }

  TEST_CASE("nn.Conv2d: value and gradients against a hand computation") {
    Generator gen(1);
    nn::Conv2d<double> conv(1, 1, 2, gen);
    conv.load_state_dict({{"weight", image({{1, 2}, {3, 4}})}, {"bias", tensor<double>({0.5})}});
    auto x = image({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}).requires_grad_();
    const auto y = conv(x);
    CHECK(allclose(y, image({{37.5, 47.5}, {67.5, 77.5}}), 0, 0));
    const auto g = grad(sum(y), std::vector{x, conv.weight, conv.bias});
    CHECK(allclose(g[0], image({{1, 3, 2}, {4, 10, 6}, {3, 7, 4}}), 0, 0));
    CHECK(allclose(g[1], image({{12, 16}, {24, 28}}), 0, 0));
    CHECK(allclose(g[2], tensor<double>({4}), 0, 0));
  }

  TEST_CASE("nn.ConvTranspose2d: value and gradients against a hand computation") {
    Generator gen(1);
    nn::ConvTranspose2d<double> up(1, 1, 2, gen);
    up.load_state_dict({{"weight", image({{1, 2}, {3, 4}})}, {"bias", tensor<double>({0})}});
    auto x = image({{1, 2}, {3, 4}}).requires_grad_();
    const auto y = up(x);
    CHECK(allclose(y, image({{1, 4, 4}, {6, 20, 16}, {9, 24, 16}}), 0, 0));
    const auto c = image({{0, 1, 2}, {3, 4, 5}, {6, 7, 8}});
    const auto g = grad(sum(y * c), std::vector{x, up.weight, up.bias});
    CHECK(allclose(g[0], image({{27, 37}, {57, 67}}), 0, 0));
    CHECK(allclose(g[1], image({{27, 37}, {57, 67}}), 0, 0));
    CHECK(allclose(g[2], tensor<double>({36}), 0, 0));
  }

  TEST_CASE("nn.Conv2d / ConvTranspose2d: second-order gradcheck w.r.t. input and parameters") {
    Generator gen(2);
    nn::Conv2d<double> conv(2, 3, {2, 3}, gen, {.stride = {2, 1}, .padding = 1});
    metagrad::testing::check_layer_gradients(conv, rand<double>(Shape{1, 2, 4, 5}, gen, -1, 1));
    nn::ConvTranspose2d<double> up(2, 2, 3, gen, {.stride = 2, .padding = 1, .output_padding = 1});
    metagrad::testing::check_layer_gradients(up, rand<double>(Shape{1, 2, 2, 2}, gen, -1, 1));
  }

  TEST_CASE("nn.Conv2d / ConvTranspose2d: PyTorch's default init bounds from the weight layout") {
    Generator gen(3);
    nn::Conv2d<double> conv(3, 8, 5, gen);  // fan_in = 3 * 25
    nn::ConvTranspose2d<double> up(8, 2, 3, gen);  // weight [8, 2, 3, 3]: PyTorch's fan_in = 2 * 9
    for (auto [layer_weight, layer_bias, fan_in] : {std::tuple{conv.weight, conv.bias, 75.0}, std::tuple{up.weight, up.bias, 18.0}}) {
      double max_w = 0, max_b = 0;
      for (double w : layer_weight.values()) max_w = std::max(max_w, std::abs(w));
      for (double b : layer_bias.values()) max_b = std::max(max_b, std::abs(b));
      CHECK(max_w <= 1 / std::sqrt(fan_in));
      CHECK(max_w > 0.9 / std::sqrt(fan_in));
      CHECK(max_b <= 1 / std::sqrt(fan_in));
    }
  }

  TEST_CASE("nn.Conv2d: bad sizes and inputs are errors naming the shapes") {
    Generator gen(1);
    METAGRAD_CHECK_ERROR(nn::Conv2d<float>(0, 4, 3, gen), "Conv2d", "positive");
    nn::Conv2d<float> conv(3, 4, 3, gen);
    METAGRAD_CHECK_ERROR(conv(zeros<float>(Shape{1, 2, 5, 5})), "conv2d", "[1, 2, 5, 5]", "[4, 3, 3, 3]");
  }
}

TEST_SUITE("nn.conv") {
  TEST_CASE("nn.Conv2d: without a Generator it is a float layer drawn from the default generator") {
    manual_seed(8);
    nn::Conv2d conv(2, 4, 3, {.padding = 1});
    nn::ConvTranspose2d up(4, 2, 2, {.stride = 2});
    static_assert(std::is_same_v<decltype(conv), nn::Conv2d<float>>);
    static_assert(std::is_same_v<decltype(up), nn::ConvTranspose2d<float>>);
    Generator gen(8);
    nn::Conv2d<float> conv_g(2, 4, 3, gen, nn::Conv2dOptions{.padding = 1});
    nn::ConvTranspose2d<float> up_g(4, 2, 2, gen, nn::ConvTranspose2dOptions{.stride = 2});
    CHECK(metagrad::testing::same(conv.weight, conv_g.weight));
    CHECK(metagrad::testing::same(conv.bias, conv_g.bias));
    CHECK(metagrad::testing::same(up.weight, up_g.weight));
    CHECK(up(conv(zeros<float>(Shape{1, 2, 5, 5}))).shape() == Shape{1, 2, 10, 10});
  }
}
