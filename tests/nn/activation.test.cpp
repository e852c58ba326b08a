// SPDX-License-Identifier: MIT
#include "metagrad/nn/activation.hpp"
#include "layer_check.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

TEST_SUITE("nn.activation") {
  TEST_CASE("nn.activation: each layer and nn::make_activation compute their function") {
    const auto x = tensor<double>({-3.0, -0.5, 0.25, 2.0});
    const std::vector<std::pair<nn::Activation, Tensor<double>>> expected{
        {nn::Activation::relu, tensor<double>({0, 0, 0.25, 2})},
        {nn::Activation::tanh, tensor<double>({std::tanh(-3.0), std::tanh(-0.5), std::tanh(0.25), std::tanh(2.0)})},
        {nn::Activation::sigmoid, tensor<double>({1 / (1 + std::exp(3.0)), 1 / (1 + std::exp(0.5)), 1 / (1 + std::exp(-0.25)),
                                              1 / (1 + std::exp(-2.0))})},
        {nn::Activation::gelu, tensor<double>({-3 * 0.5 * std::erfc(3 / std::sqrt(2.0)), -0.5 * 0.5 * std::erfc(0.5 / std::sqrt(2.0)),
                                           0.25 * 0.5 * std::erfc(-0.25 / std::sqrt(2.0)),
                                           2 * 0.5 * std::erfc(-2 / std::sqrt(2.0))})},
        {nn::Activation::leaky_relu, tensor<double>({-0.03, -0.005, 0.25, 2})},
        {nn::Activation::softplus, tensor<double>({std::log1p(std::exp(-3.0)), std::log1p(std::exp(-0.5)),
                                               std::log1p(std::exp(0.25)), std::log1p(std::exp(2.0))})},
    };
    for (const auto& [kind, want] : expected) {
      INFO("activation ", static_cast<int>(kind));
      CHECK(allclose(nn::make_activation<double>(kind)->forward(x), want, 1e-15, 1e-14));
    }
    CHECK(allclose(nn::LeakyReLU<double>(0.2)(x), tensor<double>({-0.6, -0.1, 0.25, 2}), 1e-15, 0));
    CHECK(allclose(nn::Softplus<double>(2.0)(x), tensor<double>({std::log1p(std::exp(-6.0)) / 2, std::log1p(std::exp(-1.0)) / 2,
                                                             std::log1p(std::exp(0.5)) / 2, std::log1p(std::exp(4.0)) / 2}),
                   1e-15, 1e-14));
  }

  TEST_CASE("nn.activation: second-order gradcheck of every activation layer") {
    Generator gen(4);
    const auto x = rand<double>(Shape{2, 3}, gen, -2, 2);
    for (auto kind : {nn::Activation::relu, nn::Activation::tanh, nn::Activation::sigmoid, nn::Activation::gelu, nn::Activation::leaky_relu,
                      nn::Activation::softplus}) {
      INFO("activation ", static_cast<int>(kind));
      metagrad::testing::check_layer_gradients(*nn::make_activation<double>(kind), x);
    }
    nn::GELU<double> tanh_gelu(GeluApproximate::tanh);
    metagrad::testing::check_layer_gradients(tanh_gelu, x);
  }
}
