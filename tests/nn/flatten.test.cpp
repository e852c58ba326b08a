// SPDX-License-Identifier: MIT
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/nn/flatten.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

TEST_SUITE("nn.flatten") {
  TEST_CASE("nn.Unflatten: splits one dim, inverts Flatten, and keeps the element order") {
    Generator gen(3);
    const auto x = randn<double>(Shape{3, 2, 7, 5}, gen);
    nn::Flatten<double> flat;
    nn::Unflatten<double> unflat(1, {2, 7, 5});
    const auto flat_x = flat(x);
    CHECK(flat_x.shape() == Shape{3, 70});
    const auto back = unflat(flat_x);
    CHECK(back.shape() == x.shape());
    CHECK(allclose(back, x, 0, 0));
    // A negative dim counts from the end; the split dim need not be the last.
    nn::Unflatten<double> middle(-2, {2, 3});
    CHECK(middle(randn<double>(Shape{4, 6, 5}, gen)).shape() == Shape{4, 2, 3, 5});
  }

  TEST_CASE("nn.Unflatten: gradients pass through to second order") {
    Generator gen(4);
    nn::Unflatten<double> unflat(1, {2, 3});
    const auto x = randn<double>(Shape{2, 6}, gen);
    const auto weights = randn<double>(Shape{2, 2, 3}, gen);
    // A nonlinear function of the unflattened tensor, so the second derivative is not zero.
    auto f = [&](const std::vector<TensorD>& in) { return sum(mul(weights, square(unflat(in[0])))); };
    const auto result = gradgradcheck(f, {x});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("nn.Unflatten: bad sizes and dims name the layer and the shapes") {
    METAGRAD_CHECK_ERROR(nn::Unflatten<double>(1, {}), "nn::Unflatten", "at least one size");
    METAGRAD_CHECK_ERROR(nn::Unflatten<double>(1, {2, 0}), "nn::Unflatten", "positive");
    nn::Unflatten<double> unflat(1, {2, 4});
    METAGRAD_CHECK_ERROR(unflat(zeros<double>(Shape{3, 7})), "nn::Unflatten", "[2, 4]", "[3, 7]");
    METAGRAD_CHECK_ERROR(unflat(zeros<double>(Shape{8})), "nn::Unflatten", "out of range", "[8]");
  }
}
