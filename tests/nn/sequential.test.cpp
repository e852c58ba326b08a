// SPDX-License-Identifier: MIT
#include "metagrad/nn/conv.hpp"
#include "metagrad/nn/dropout.hpp"
#include "metagrad/nn/flatten.hpp"
#include "metagrad/nn/mlp.hpp"
#include "metagrad/nn/pool.hpp"
#include "layer_check.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

TEST_SUITE("nn.sequential") {
  TEST_CASE("nn.Sequential: a LeNet-style stack chains its layers and names them by position") {
    Generator gen(1);
    nn::Sequential<double> net{std::make_shared<nn::Conv2d<double>>(1, 4, 3, gen), std::make_shared<nn::ReLU<double>>(),
                           std::make_shared<nn::MaxPool2d<double>>(2), std::make_shared<nn::Flatten<double>>()};
    auto fc = net.emplace_back<nn::Linear<double>>(36, 10, gen);
    CHECK(net.size() == 5);
    CHECK(net.named_parameters().names() == std::vector<std::string>{"0.weight", "0.bias", "4.weight", "4.bias"});
    const auto x = rand<double>(Shape{2, 1, 8, 8}, gen, -1, 1);
    const auto y = net(x);
    CHECK(y.shape() == Shape{2, 10});
    Tensor<double> h = x;
    for (std::size_t i = 0; i < net.size(); ++i) h = net[i].forward(h);
    CHECK(allclose(y, h, 0, 0));
    CHECK(allclose(y, fc->forward(flatten(max_pool2d(relu(net[0].forward(x)), 2), 1)), 0, 0));
    METAGRAD_CHECK_ERROR(net[5], "Sequential", "index 5", "5 layers");
  }

  TEST_CASE("nn.Sequential: train/eval reaches a nested Dropout") {
    Generator gen(1);
    nn::Sequential<double> net{std::make_shared<nn::Linear<double>>(4, 4, gen), std::make_shared<nn::Dropout<double>>(0.5, gen)};
    const auto x = ones<double>(Shape{8, 4});
    net.eval();
    CHECK(allclose(net(x), net[0].forward(x), 0, 0));
    net.train();
    CHECK_FALSE(allclose(net(x), net[0].forward(x)));
  }

  TEST_CASE("nn.MLP: Linear layers with the activation between them, none after the last") {
    Generator g1(5), g2(5);
    nn::MLP<double> mlp({4, 8, 8, 3}, g1, nn::Activation::tanh);
    CHECK(mlp.size() == 5);
    CHECK(mlp.named_parameters().names() ==
          std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"});
    // Built layer by layer from the same seed, the same network.
    nn::Linear<double> l0(4, 8, g2), l1(8, 8, g2), l2(8, 3, g2);
    const auto x = rand<double>(Shape{5, 4}, g2, -1, 1);
    CHECK(allclose(mlp(x), l2(tanh(l1(tanh(l0(x))))), 0, 0));
    METAGRAD_CHECK_ERROR(nn::MLP<double>({4}, g1), "MLP", "1 sizes");
  }

  TEST_CASE("nn.MLP / Sequential: second-order gradcheck through the whole stack") {
    Generator gen(6);
    nn::MLP<double> mlp({3, 4, 2}, gen, nn::Activation::gelu);
    metagrad::testing::check_layer_gradients(mlp, rand<double>(Shape{2, 3}, gen, -1, 1));
    nn::Sequential<double> cnn{std::make_shared<nn::Conv2d<double>>(1, 2, 2, gen), std::make_shared<nn::Tanh<double>>(),
                           std::make_shared<nn::AvgPool2d<double>>(2), std::make_shared<nn::Flatten<double>>(),
                           std::make_shared<nn::Linear<double>>(2, 2, gen)};
    metagrad::testing::check_layer_gradients(cnn, rand<double>(Shape{2, 1, 3, 3}, gen, -1, 1));
  }
}

TEST_SUITE("nn.sequential") {
  TEST_CASE("nn.MLP: without a Generator it is a float MLP drawn from the default generator") {
    manual_seed(6);
    nn::MLP mlp({4, 8, 2});
    static_assert(std::is_same_v<decltype(mlp), nn::MLP<float>>);
    Generator gen(6);
    nn::MLP<float> mlp_g({4, 8, 2}, gen);
    const auto a = mlp.named_parameters(), b = mlp_g.named_parameters();
    REQUIRE(a.size() == 4);
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(metagrad::testing::same(a[i].second, b[i].second));
    // layers() lists the chain, in order, for the layer-wise explainers.
    REQUIRE(mlp.layers().size() == 3);
    CHECK(mlp.layers()[1] == &mlp[1]);
    CHECK(mlp[0].layers().empty());
  }
}
