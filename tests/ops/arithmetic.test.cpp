// SPDX-License-Identifier: MIT
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/reduction.hpp"
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
  }
}
