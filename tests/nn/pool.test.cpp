// SPDX-License-Identifier: MIT
#include "metagrad/autograd/engine.hpp"
#include "metagrad/nn/pool.hpp"
#include "layer_check.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

TEST_SUITE("nn.pool") {
  TEST_CASE("nn.pool: shapes, with the stride defaulting to the kernel") {
    nn::MaxPool2d<float> mp(2);
    nn::AvgPool2d<float> ap(3, 2, 1);
    nn::AdaptiveAvgPool2d<float> aap(3);
    const auto x = zeros<float>(Shape{2, 32, 14, 14});
    CHECK(mp(x).shape() == Shape{2, 32, 7, 7});
    CHECK(ap(x).shape() == Shape{2, 32, 7, 7});
    CHECK(aap(x).shape() == Shape{2, 32, 3, 3});
    CHECK(mp.parameters().empty());
  }

  TEST_CASE("nn.pool: values and gradients against a hand computation") {
    const auto x = reshape(tensor<double>({{1, 5, 2, 0}, {3, 4, 8, 6}, {7, 0, 1, 2}, {2, 9, 3, 3}}), Shape{1, 1, 4, 4})
                       .requires_grad_();
    nn::MaxPool2d<double> mp(2);
    const auto ym = mp(x);
    CHECK(allclose(ym, reshape(tensor<double>({{5, 8}, {9, 3}}), Shape{1, 1, 2, 2}), 0, 0));
    // Each window's gradient goes to its maximum; the tie in the last window goes to the first (row-major).
    const auto gm = grad(sum(ym * reshape(tensor<double>({{1, 2}, {3, 4}}), Shape{1, 1, 2, 2})), x);
    CHECK(allclose(gm, reshape(tensor<double>({{0, 1, 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 0}, {0, 3, 4, 0}}), Shape{1, 1, 4, 4}), 0, 0));
    nn::AvgPool2d<double> ap(2);
    CHECK(allclose(ap(x), reshape(tensor<double>({{13.0 / 4, 16.0 / 4}, {18.0 / 4, 9.0 / 4}}), Shape{1, 1, 2, 2}), 1e-15, 0));
    CHECK(allclose(grad(sum(ap(x)), x), full<double>(Shape{1, 1, 4, 4}, 0.25), 0, 0));
    nn::AdaptiveAvgPool2d<double> aap(1);
    CHECK(aap(x).item() == doctest::Approx(56.0 / 16));
  }

  TEST_CASE("nn.pool: second-order gradcheck") {
    Generator gen(3);
    const auto x = rand<double>(Shape{1, 2, 5, 5}, gen, -1, 1);
    nn::MaxPool2d<double> mp(2, 1);
    nn::AvgPool2d<double> ap(3, 2, 1);
    nn::AdaptiveAvgPool2d<double> aap(Size2d{2, 3});
    metagrad::testing::check_layer_gradients(mp, x);
    metagrad::testing::check_layer_gradients(ap, x);
    metagrad::testing::check_layer_gradients(aap, x);
  }
}
