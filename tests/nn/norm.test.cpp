// SPDX-License-Identifier: MIT
#include <cmath>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/nn/norm.hpp"
#include "layer_check.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

TEST_SUITE("nn.norm") {
  TEST_CASE("nn.LayerNorm: values and input gradient against the closed form") {
    nn::LayerNorm<double> ln(4, 1e-5, false);
    CHECK(ln.parameters().empty());
    auto x = tensor<double>({{1, 2, 3, 4}, {-2, 0, 0, 6}}).requires_grad_();
    const auto c = tensor<double>({{0.5, -1, 2, 0}, {1, 1, -3, 0.25}});
    const auto y = ln(x);
    const auto gx = grad(sum(y * c), x);
    // Per row: y = (x - μ)/σ with σ = √(var + eps); dx = (c - mean(c) - y·mean(c·y)) / σ.
    for (int r = 0; r < 2; ++r) {
      double mu = 0, var = 0, mc = 0, mcy = 0;
      for (int i = 0; i < 4; ++i) mu += x(r, i) / 4;
      for (int i = 0; i < 4; ++i) var += (x(r, i) - mu) * (x(r, i) - mu) / 4;
      const double sigma = std::sqrt(var + 1e-5);
      for (int i = 0; i < 4; ++i) {
        const double yi = (x(r, i) - mu) / sigma;
        CHECK(y(r, i) == doctest::Approx(yi).epsilon(1e-14));
        mc += c(r, i) / 4;
        mcy += c(r, i) * yi / 4;
      }
      for (int i = 0; i < 4; ++i)
        CHECK(gx(r, i) == doctest::Approx((c(r, i) - mc - y(r, i) * mcy) / sigma).epsilon(1e-12));
    }
  }

  TEST_CASE("nn.LayerNorm: shapes and second-order gradcheck over two trailing dims with affine") {
    Generator gen(2);
    nn::LayerNorm<double> ln(Shape{2, 3});
    CHECK(ln.named_parameters().names() == std::vector<std::string>{"weight", "bias"});
    CHECK(ln(zeros<double>(Shape{5, 2, 3}) + 1.0).shape() == Shape{5, 2, 3});
    nn::init::uniform_(ln.weight, gen, 0.5, 1.5);
    nn::init::uniform_(ln.bias, gen, -1, 1);
    metagrad::testing::check_layer_gradients(ln, rand<double>(Shape{2, 2, 3}, gen, -2, 2));
    METAGRAD_CHECK_ERROR(ln(zeros<double>(Shape{2, 3, 2})), "LayerNorm", "[2, 3, 2]", "[2, 3]");
  }

  TEST_CASE("nn.BatchNorm2d: training normalises with batch statistics and updates the running ones") {
    Generator gen(3);
    nn::BatchNorm2d<double> bn(2);
    CHECK(bn.state_dict().names() == std::vector<std::string>{"weight", "bias", "running_mean", "running_var"});
    const auto x = rand<double>(Shape{3, 2, 2, 2}, gen, -1, 3);  // 12 values per channel
    const auto y = bn(x);
    for (int ch = 0; ch < 2; ++ch) {
      double mu = 0, ss = 0, ymu = 0, yss = 0;
      for (int n = 0; n < 3; ++n)
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 2; ++j) {
            mu += x(n, ch, i, j) / 12;
            ymu += y(n, ch, i, j) / 12;
          }
      for (int n = 0; n < 3; ++n)
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 2; ++j) {
            ss += (x(n, ch, i, j) - mu) * (x(n, ch, i, j) - mu);
            yss += y(n, ch, i, j) * y(n, ch, i, j);
          }
      CHECK(std::abs(ymu) < 1e-14);
      CHECK(yss / 12 == doctest::Approx(ss / 12 / (ss / 12 + 1e-5)).epsilon(1e-12));
      CHECK(bn.running_mean(ch) == doctest::Approx(0.1 * mu).epsilon(1e-14));
      CHECK(bn.running_var(ch) == doctest::Approx(0.9 + 0.1 * ss / 11).epsilon(1e-14));
    }
    CHECK_FALSE(bn.running_mean.requires_grad());
  }

  TEST_CASE("nn.BatchNorm2d: evaluation uses the running statistics and leaves them alone") {
    nn::BatchNorm2d<double> bn(2);
    bn.load_state_dict({{"weight", tensor<double>({2, 1})},
                        {"bias", tensor<double>({0, 1})},
                        {"running_mean", tensor<double>({1, -1})},
                        {"running_var", tensor<double>({4, 0.25})}});
    bn.eval();
    const auto x = reshape(tensor<double>({3, 5, 0, 1}), Shape{1, 2, 2, 1});
    const auto y = bn(x);
    CHECK(y(0, 0, 0, 0) == doctest::Approx(2 * (3 - 1) / std::sqrt(4 + 1e-5)));
    CHECK(y(0, 0, 1, 0) == doctest::Approx(2 * (5 - 1) / std::sqrt(4 + 1e-5)));
    CHECK(y(0, 1, 0, 0) == doctest::Approx((0 + 1) / std::sqrt(0.25 + 1e-5) + 1));
    CHECK(y(0, 1, 1, 0) == doctest::Approx((1 + 1) / std::sqrt(0.25 + 1e-5) + 1));
    CHECK(bn.running_mean.to_vector() == std::vector<double>{1, -1});
    CHECK(bn.running_var.to_vector() == std::vector<double>{4, 0.25});
    // A one-sample batch is fine in evaluation and an error in training.
    bn.train();
    METAGRAD_CHECK_ERROR(bn(zeros<double>(Shape{1, 2, 1, 1})), "BatchNorm", "[1, 2, 1, 1]");
  }

  TEST_CASE("nn.BatchNorm2d: second-order gradcheck in training and in evaluation") {
    Generator gen(4);
    nn::BatchNorm2d<double> bn(2);
    nn::init::uniform_(bn.weight, gen, 0.5, 1.5);
    nn::init::uniform_(bn.bias, gen, -1, 1);
    const auto x = rand<double>(Shape{2, 2, 2, 3}, gen, -2, 2);
    metagrad::testing::check_layer_gradients(bn, x);
    bn.eval();
    metagrad::testing::check_layer_gradients(bn, x);
  }

  TEST_CASE("nn.BatchNorm1d: [N, C] and [N, C, L]; bad shapes are errors") {
    Generator gen(5);
    nn::BatchNorm1d<double> bn(3, 1e-5, 0.1, false, false);
    CHECK(bn.state_dict().empty());
    const auto x = rand<double>(Shape{4, 3}, gen);
    CHECK(bn(x).shape() == Shape{4, 3});
    CHECK(bn(rand<double>(Shape{2, 3, 5}, gen)).shape() == Shape{2, 3, 5});
    bn.eval();  // without running statistics, evaluation uses the batch's
    CHECK(allclose(bn(x), (x - mean(x, {0}, true)) / sqrt(var(x, {0}, false, true) + 1e-5), 1e-14, 0));
    METAGRAD_CHECK_ERROR(bn(zeros<double>(Shape{4, 2})), "BatchNorm", "[4, 2]", "3 channels");
    METAGRAD_CHECK_ERROR(bn(zeros<double>(Shape{4, 3, 1, 1})), "BatchNorm1d", "[4, 3, 1, 1]");
  }
}
