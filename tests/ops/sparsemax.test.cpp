// SPDX-License-Identifier: MIT
#include <cmath>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/ops/view.hpp"
#include "metagrad/ops/sparsemax.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using metagrad::testing::OpRow;
using V = std::vector<Tensor<double>>;

TEST_SUITE("ops.sparsemax") {
  TEST_CASE("ops.sparsemax: op table, order 2, last and inner dims") {
    // Weights w make the loss depend on which entries are in the support, so the gradient of the
    // support-masked vjp is actually exercised. Inputs are spread out so no entry sits on a kink.
    auto spread = [](const Shape& s) {
      return [s](Generator& gen) {
        auto x = rand<double>(s, gen, -1.0, 1.0);
        auto base = arange<double>(0.0, static_cast<double>(s.numel()));
        return V{x * 0.05 + reshape(base * 0.37 - std::floor(s.numel() * 0.37 / 2), s)};
      };
    };
    const std::vector<OpRow> rows = {
        {"sparsemax last dim", {{3, 5}}, [](const V& a) { return sparsemax(a[0], -1) * sparsemax(a[0], -1); }, 2, -2, 2,
         {}, spread(Shape{3, 5})},
        {"sparsemax dim 1 of 3", {{2, 4, 3}}, [](const V& a) { return sparsemax(a[0], 1) * a[0]; }, 2, -2, 2, {},
         spread(Shape{2, 4, 3})},
        {"sparsemax dim 0", {{4, 2}}, [](const V& a) { return square(sparsemax(a[0] * 0.3, 0)); }, 2, -2, 2, {},
         spread(Shape{4, 2})},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.sparsemax: known values") {
    // z = [1, 0.5, -1]: support {0, 1}, τ = (1.5 - 1) / 2 = 0.25 -> [0.75, 0.25, 0].
    CHECK(allclose(sparsemax(tensor<double>({1.0, 0.5, -1.0}), 0), tensor<double>({0.75, 0.25, 0.0}), 1e-12));
    // Ties and uniform inputs give uniform outputs; a dominant score gives a one-hot.
    CHECK(allclose(sparsemax(tensor<double>({{0.2, 0.2, 0.2, 0.2}}), 1), full<double>(Shape{1, 4}, 0.25), 1e-12));
    CHECK(allclose(sparsemax(tensor<float>({3.f, 0.f, 1.f}), 0), tensor<float>({1.f, 0.f, 0.f})));
    // Along dim 0 of a [3, 2]: column 0 is [1, 0.5, -1], column 1 is [0, 0, 0].
    const auto y = sparsemax(tensor<double>({{1.0, 0.0}, {0.5, 0.0}, {-1.0, 0.0}}), 0);
    CHECK(allclose(y, tensor<double>({{0.75, 1.0 / 3}, {0.25, 1.0 / 3}, {0.0, 1.0 / 3}}), 1e-12));
    // Invariant to adding a constant, and every slice sums to one.
    Generator gen(3);
    const auto x = randn<double>(Shape{5, 7}, gen);
    CHECK(allclose(sparsemax(x, 1), sparsemax(x + 10.0, 1), 1e-9));
    CHECK(allclose(sum(sparsemax(x, 1), {1}), ones<double>(Shape{5}), 1e-12));
  }

  TEST_CASE("ops.sparsemax: gradient is the support-projected upstream gradient") {
    auto x = tensor<double>({1.0, 0.5, -1.0});
    x.requires_grad_();
    const auto g = grad(sum(sparsemax(x, 0) * tensor<double>({1.0, 3.0, 5.0})), x);
    // s = [1, 1, 0]: s ⊙ (w − mean_S w) = [1 − 2, 3 − 2, 0].
    CHECK(allclose(g, tensor<double>({-1.0, 1.0, 0.0}), 1e-12));
  }

  TEST_CASE("ops.sparsemax: bad input") {
    METAGRAD_CHECK_ERROR(sparsemax(tensor<float>({1.f, 2.f}), 1), "sparsemax", "dim");
    METAGRAD_CHECK_ERROR(sparsemax(scalar_tensor<float>(1.f), 0), "sparsemax", "[]");
    METAGRAD_CHECK_ERROR(sparsemax(zeros<float>(Shape{2, 0}), 1), "sparsemax", "[2, 0]");
  }
}
