// SPDX-License-Identifier: MIT
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/view.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::OpRow;
using V = std::vector<Tensor<double>>;

TEST_SUITE("ops.arithmetic") {
  TEST_CASE("ops.arithmetic: op table, orders 1-3, with broadcasting") {
    const std::vector<OpRow> rows = {
        {"neg", {{3, 5}}, [](const V& a) { return -a[0]; }},
        {"add broadcast", {{2, 3, 5}, {3, 1}}, [](const V& a) { return a[0] + a[1]; }},
        {"sub broadcast", {{1, 5}, {3, 1}}, [](const V& a) { return a[0] - a[1]; }},
        {"mul broadcast order 3", {{3, 5}, {5}}, [](const V& a) { return a[0] * a[1]; }, 3},
        {"mul same shape", {{7}, {7}}, [](const V& a) { return a[0] * a[1] * a[0]; }, 3},
        {"div broadcast", {{3, 4}, {4}}, [](const V& a) { return a[0] / a[1]; }, 2, 0.5, 2.0},
        {"scalar forms", {{2, 3}}, [](const V& a) { return (2.0 - a[0]) * 3.0 + 1.5 / a[0] - a[0] / 4.0; }, 2, 0.5, 2.0},
        {"broadcast_to", {{3, 1}}, [](const V& a) { return broadcast_to(a[0], Shape{2, 3, 4}); }},
        {"sum_to", {{2, 3, 4}}, [](const V& a) { return sum_to(a[0] * a[0], Shape{3, 1}); }},
        {"sum dims keepdim", {{2, 3, 4}}, [](const V& a) { return sum(a[0] * a[0], {0, 2}, true); }},
        {"mean all", {{3, 5}}, [](const V& a) { return mean(a[0] * a[0]); }},
        {"reshape", {{2, 6}}, [](const V& a) { return reshape(a[0] * a[0], {3, -1}); }},
        {"unsqueeze/squeeze", {{3, 1}}, [](const V& a) { return squeeze(unsqueeze(a[0] * a[0], 0), -1); }},
        {"unsqueeze -1 and 1, broadcast", {{3, 5}}, [](const V& a) { return unsqueeze(a[0], -1) * unsqueeze(a[0], 1); }},
        {"flatten dims 1..2", {{2, 3, 5}}, [](const V& a) { return flatten(a[0] * a[0], 1, 2); }},
        {"squeeze all", {{1, 3, 1, 5}}, [](const V& a) { return squeeze(a[0]) * a[0]; }},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.arithmetic: broadcasting values and errors") {
    auto a = tensor<float>({{1, 2, 3}, {4, 5, 6}});
    auto b = tensor<float>({10, 20, 30});
    CHECK(metagrad::testing::allclose(a + b, tensor<float>({{11, 22, 33}, {14, 25, 36}})));
    METAGRAD_CHECK_ERROR(a + tensor<float>({1, 2}), "add", "[2, 3]", "[2]", "broadcast");
    METAGRAD_CHECK_ERROR(reshape(a, {4, -1}), "reshape", "[2, 3]");
    METAGRAD_CHECK_ERROR(sum(a, {2}), "sum", "dim 2", "rank 2");
    METAGRAD_CHECK_ERROR(squeeze(a, 0), "squeeze", "[2, 3]");
    METAGRAD_CHECK_ERROR(a - tensor<float>({1, 2}), "sub", "[2, 3]", "[2]", "broadcast");
    METAGRAD_CHECK_ERROR(a * zeros<float>(Shape{3, 3}), "mul", "[2, 3]", "[3, 3]", "broadcast");
    METAGRAD_CHECK_ERROR(div(zeros<float>(Shape{4, 1, 2}), a), "div", "[4, 1, 2]", "[2, 3]", "broadcast");
    METAGRAD_CHECK_ERROR(broadcast_to(a, Shape{3, 3}), "broadcast_to", "[2, 3]", "[3, 3]");
    METAGRAD_CHECK_ERROR(broadcast_to(a, Shape{3}), "broadcast_to", "[2, 3]", "[3]");
    METAGRAD_CHECK_ERROR(sum_to(a, Shape{2}), "sum_to", "[2, 3]", "[2]");
    METAGRAD_CHECK_ERROR(mean(a, {-3}), "mean", "dim -3", "rank 2");
    METAGRAD_CHECK_ERROR(reshape(a, {-1, -1}), "reshape", "-1");
    METAGRAD_CHECK_ERROR(flatten(a, 1, 0), "flatten", "[2, 3]");
    METAGRAD_CHECK_ERROR(flatten(a, 0, 2), "flatten", "dim 2", "rank 2");
    METAGRAD_CHECK_ERROR(unsqueeze(a, 3), "unsqueeze", "dim 3", "rank 3");
    METAGRAD_CHECK_ERROR(unsqueeze(a, -4), "unsqueeze", "dim -4", "rank 3");
  }

  TEST_CASE("ops.arithmetic: unsqueeze, squeeze and flatten place dims like PyTorch") {
    const auto a = tensor<double>({{1, 2, 3}, {4, 5, 6}});
    CHECK(unsqueeze(a, 0).shape() == Shape{1, 2, 3});
    CHECK(unsqueeze(a, 1).shape() == Shape{2, 1, 3});
    CHECK(unsqueeze(a, 2).shape() == Shape{2, 3, 1});
    CHECK(unsqueeze(a, -1).shape() == Shape{2, 3, 1});  // negative dims count in the output's rank
    CHECK(unsqueeze(a, -2).shape() == Shape{2, 1, 3});
    CHECK(unsqueeze(a, -3).shape() == Shape{1, 2, 3});
    CHECK(unsqueeze(scalar_tensor(2.0), -1).shape() == Shape{1});
    CHECK(squeeze(zeros<double>(Shape{1, 3, 1})).shape() == Shape{3});
    CHECK(squeeze(zeros<double>(Shape{1, 3, 1}), -1).shape() == Shape{1, 3});
    CHECK(squeeze(scalar_tensor(2.0), 0).shape() == Shape{});
    CHECK(squeeze(scalar_tensor(2.0), -1).item() == 2.0);
    const auto f = flatten(reshape(arange<double>(0, 24), {2, 3, 4}), 1);
    CHECK(f.shape() == Shape{2, 12});
    CHECK(f(1, 5) == 17.0);
    CHECK(flatten(zeros<double>(Shape{2, 3, 4}), 0, 1).shape() == Shape{6, 4});
    CHECK(flatten(scalar_tensor(2.0)).shape() == Shape{1});
  }
}
