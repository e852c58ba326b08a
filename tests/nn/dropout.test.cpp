// SPDX-License-Identifier: MIT
#include "metagrad/autograd/engine.hpp"
#include "metagrad/nn/dropout.hpp"
#include "metagrad/ops/reduction.hpp"
#include "layer_check.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

TEST_SUITE("nn.dropout") {
  TEST_CASE("nn.Dropout: the identity in evaluation, scaled survivors in training") {
    Generator gen(1);
    nn::Dropout<double> drop(0.25, gen);
    const auto x = rand<double>(Shape{100, 100}, gen, 1, 2);
    drop.eval();
    CHECK(drop(x).is_same(x));
    drop.train();
    const auto y = drop(x);
    std::int64_t dropped = 0;
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      if (y.data()[i] == 0) ++dropped;
      else CHECK(y.data()[i] == doctest::Approx(x.data()[i] / 0.75).epsilon(1e-15));
    }
    CHECK(static_cast<double>(dropped) / 1e4 == doctest::Approx(0.25).epsilon(0.06));
  }

  TEST_CASE("nn.Dropout: masks are reproducible from the construction seed and differ step to step") {
    Generator g1(7), g2(7);
    nn::Dropout<double> a(0.5, g1), b(0.5, g2);
    const auto x = ones<double>(Shape{64});
    const auto a1 = a(x), a2 = a(x);
    CHECK(a1.to_vector() == b(x).to_vector());
    CHECK(a2.to_vector() == b(x).to_vector());
    CHECK(a1.to_vector() != a2.to_vector());
  }

  TEST_CASE("nn.Dropout: the gradient is the mask, and gradcheck passes to second order with a fixed mask") {
    Generator gen(2);
    nn::Dropout<double> drop(0.4, gen);
    auto x = rand<double>(Shape{3, 4}, gen, 1, 2).requires_grad_();
    const auto y = drop(x);
    CHECK(allclose(grad(sum(y), x), y.detach() / x.detach(), 1e-15, 0));
    // Reseeding in the forward keeps the mask fixed across the finite-difference evaluations.
    struct Fixed : nn::Layer<double> {
      explicit Fixed(Generator& g) : drop(0.4, g) { register_module("drop", drop); }
      Tensor<double> forward(const Tensor<double>& x) override {
        drop.generator().seed(11);
        return drop(x * x);
      }
      nn::Dropout<double> drop;
    } fixed(gen);
    metagrad::testing::check_layer_gradients(fixed, rand<double>(Shape{3, 4}, gen, -1, 1));
    METAGRAD_CHECK_ERROR(nn::Dropout<double>(1.0, gen), "Dropout", "outside [0, 1)");
  }
}

TEST_SUITE("nn.dropout") {
  TEST_CASE("nn.Dropout: without a Generator (p = 0.5 by default) its masks follow manual_seed") {
    nn::Dropout half;
    static_assert(std::is_same_v<decltype(half), nn::Dropout<float>>);
    CHECK(half.p() == 0.5);
    const auto x = ones<double>(Shape{64});
    manual_seed(3);
    nn::Dropout<double> a(0.3);
    manual_seed(3);
    nn::Dropout<double> b(0.3);
    Generator gen(3);
    nn::Dropout<double> c(0.3, gen);
    const auto ya = a(x);
    CHECK(metagrad::testing::same(ya, b(x)));
    CHECK(metagrad::testing::same(ya, c(x)));
    CHECK_FALSE(metagrad::testing::same(ya, a(x)));  // and the mask stream moves on
  }
}
