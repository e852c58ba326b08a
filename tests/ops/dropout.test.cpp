// SPDX-License-Identifier: MIT
#include <cmath>

#include "metagrad/core/creation.hpp"
#include "metagrad/ops/dropout.hpp"
#include "metagrad/ops/reduction.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using metagrad::testing::OpRow;
using V = std::vector<Tensor<double>>;

TEST_SUITE("ops.dropout") {
  TEST_CASE("ops.dropout: op table (a fixed seed per call, so every evaluation sees one mask)") {
    const std::vector<OpRow> rows = {
        {"dropout p=0.4", {{3, 5}},
         [](const V& a) {
           Generator gen(17);
           return dropout(a[0] * a[0], 0.4, true, gen);
         }},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.dropout: the same seed gives the same mask; it is bernoulli(1 - p) / (1 - p)") {
    const auto x = ones<double>(Shape{4, 50});
    Generator a(99), b(99), c(100), d(99);
    const auto ya = dropout(x, 0.3, true, a), yb = dropout(x, 0.3, true, b), yc = dropout(x, 0.3, true, c);
    CHECK(ya.to_vector() == yb.to_vector());
    CHECK(ya.to_vector() != yc.to_vector());
    const auto expect = mul(bernoulli<double>(x.shape(), 0.7, d), 1 / 0.7);
    CHECK(ya.to_vector() == expect.to_vector());
    // The generator advanced: the next draw differs from the first.
    CHECK(dropout(x, 0.3, true, a).to_vector() != ya.to_vector());
  }

  TEST_CASE("ops.dropout: the mean is preserved and the drop rate is p, within a few standard errors") {
    const std::int64_t n = 1'000'000;
    const double p = 0.3;
    Generator gen(2024);
    const auto y = dropout(ones<double>(Shape{n}), p, true, gen);
    std::int64_t zeros_seen = 0, other = 0;
    for (double v : y.values()) {
      if (v == 0) ++zeros_seen;
      else if (v != 1 / (1 - p)) ++other;
    }
    CHECK(other == 0);  // every kept value is exactly 1 / (1 - p)
    // Standard errors: sqrt(p (1-p) / n) = 4.6e-4 for the rate, sqrt(p / ((1-p) n)) = 6.5e-4 for the mean.
    CHECK(std::abs(static_cast<double>(zeros_seen) / n - p) < 5 * 4.6e-4);
    CHECK(std::abs(mean(y).item() - 1.0) < 5 * 6.5e-4);
  }

  TEST_CASE("ops.dropout: the gradient is the mask") {
    Generator gen(5);
    auto x = rand<double>(Shape{6, 7}, gen, 0.5, 1.5).requires_grad_();
    Generator mask_gen(31), same(31);
    const auto y = dropout(x, 0.5, true, mask_gen);
    const auto mask = mul(bernoulli<double>(x.shape(), 0.5, same), 2.0);
    CHECK(allclose(y, mul(x.detach(), mask), 0));
    const auto w = randn<double>(x.shape(), gen);
    CHECK(allclose(grad(sum(mul(y, w)), x), mul(w, mask), 0));
  }

  TEST_CASE("ops.dropout: p = 0 and evaluation are the identity") {
    auto x = randn<double>(Shape{3, 4}).requires_grad_();
    CHECK(dropout(x, 0.0).is_same(x));
    CHECK(dropout(x, 0.9, false).is_same(x));
  }

  TEST_CASE("ops.dropout: p outside [0, 1) names the op and the shape") {
    const auto x = ones<double>(Shape{2, 3});
    METAGRAD_CHECK_ERROR(dropout(x, 1.0), "dropout", "probability 1", "[2, 3]");
    METAGRAD_CHECK_ERROR(dropout(x, -0.1), "dropout", "probability -0.1", "[2, 3]");
    METAGRAD_CHECK_ERROR(dropout(x, std::nan("")), "dropout", "probability nan", "[2, 3]");
  }
}
