// SPDX-License-Identifier: MIT
#include <cmath>
#include <limits>

#include "metagrad/ops/pool.hpp"
#include "metagrad/ops/reduction.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using metagrad::testing::OpRow;
using V = std::vector<Tensor<double>>;

namespace {
Tensor<double> plane(std::initializer_list<double> values, std::int64_t h, std::int64_t w) {
  return from_vector<double>(std::vector<double>(values), Shape{1, 1, h, w});
}

/// Distinct values in random order, so that no two elements of a max-pooling window tie and
/// finite differences never cross a tie.
std::vector<Tensor<double>> distinct_inputs(const Shape& s, Generator& gen) {
  auto x = Tensor<double>::empty(s);
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.1 * static_cast<double>(i) - 1.0;
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[gen.below(i)]);
  std::copy(v.begin(), v.end(), x.fresh_data());
  return {x};
}
}  // namespace

TEST_SUITE("ops.pool") {
  TEST_CASE("ops.pool: op table") {
    std::vector<OpRow> rows = {
        {"max_pool2d 2x2", {{2, 3, 5, 6}}, [](const V& a) { return max_pool2d(a[0], 2); }},
        {"max_pool2d 3x2 overlapping, padded", {{2, 2, 7, 6}},
         [](const V& a) { return max_pool2d(a[0], {3, 2}, Size2d{2, 1}, {1, 1}); }},
        {"max_pool2d on [C, H, W]", {{3, 5, 5}}, [](const V& a) { return max_pool2d(a[0], 3, 2); }},
        {"avg_pool2d 2x2", {{2, 3, 5, 6}}, [](const V& a) { return avg_pool2d(a[0], 2); }},
        {"avg_pool2d 3x3 stride 2 padding 1", {{2, 2, 7, 6}}, [](const V& a) { return avg_pool2d(a[0], 3, 2, 1); }},
        {"avg_pool2d without padded positions", {{1, 2, 7, 6}},
         [](const V& a) { return avg_pool2d(a[0], {3, 2}, Size2d{2, 1}, {1, 1}, false); }},
        {"adaptive_avg_pool2d 7x6 -> 3x4", {{2, 2, 7, 6}}, [](const V& a) { return adaptive_avg_pool2d(a[0], {3, 4}); }},
        {"adaptive_avg_pool2d to 1x1", {{2, 3, 5, 4}}, [](const V& a) { return adaptive_avg_pool2d(a[0], 1); }},
    };
    for (auto& row : rows)
      if (row.name.starts_with("max_pool2d")) {
        const Shape s = row.shapes[0];
        row.make_inputs = [s](Generator& gen) { return distinct_inputs(s, gen); };
      }
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.max_pool2d: values and argmax positions by hand") {
    const auto x = plane({1, 5, 2, 0,  //
                          3, 4, 8, 7,  //
                          9, 0, 1, 1,  //
                          2, 6, 1, 3},
                         4, 4);
    const auto [y, idx] = max_pool2d_with_indices(x, 2);
    CHECK(allclose(y, plane({5, 8, 9, 3}, 2, 2)));
    CHECK(idx.to_vector() == std::vector<std::int64_t>{1, 6, 8, 15});
    // Ties go to the first maximum in row-major order.
    CHECK(max_pool2d_with_indices(plane({2, 1, 2, 2}, 2, 2), 2).second.item() == 0);
    // 3x3 windows, stride 1, padding 1: each output is the max of its clipped neighbourhood.
    const auto z = max_pool2d(x, 3, 1, 1);
    CHECK(allclose(z, plane({5, 8, 8, 8, 9, 9, 8, 8, 9, 9, 8, 8, 9, 9, 6, 3}, 4, 4)));
  }

  TEST_CASE("ops.max_pool2d: gradient goes to the argmax, overlapping windows add up") {
    auto x = plane({1, 2, 3, 4, 9, 5, 6, 7, 8}, 3, 3).requires_grad_();
    // 2x2 windows, stride 1: all four windows of this 3x3 plane contain the 9 at (1, 1).
    auto g = grad(sum(max_pool2d(x, 2, 1)), x);
    CHECK(allclose(g, plane({0, 0, 0, 0, 4, 0, 0, 0, 0}, 3, 3)));
  }

  TEST_CASE("ops.max_pool2d: NaN propagates like in PyTorch") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const auto y = max_pool2d(plane({1, nan, 3, 4}, 2, 2), 2);
    CHECK(std::isnan(y.item()));
  }

  TEST_CASE("ops.avg_pool2d: values by hand, with and without counting padding") {
    const auto x = plane({1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3);
    CHECK(allclose(avg_pool2d(x, 2), plane({3}, 1, 1)));
    // 2x2 windows, stride 2, padding 1: windows cover {1}, {2,3}, {4,7}, {5,6,8,9}.
    CHECK(allclose(avg_pool2d(x, 2, 2, 1), plane({1.0 / 4, 5.0 / 4, 11.0 / 4, 28.0 / 4}, 2, 2)));
    CHECK(allclose(avg_pool2d(x, 2, 2, 1, false), plane({1, 5.0 / 2, 11.0 / 2, 28.0 / 4}, 2, 2)));
  }

  TEST_CASE("ops.adaptive_avg_pool2d: PyTorch's overlapping windows") {
    // 5 -> 3 along the width: windows [0, 2), [1, 4), [3, 5).
    const auto x = plane({1, 2, 3, 4, 5}, 1, 5);
    CHECK(allclose(adaptive_avg_pool2d(x, {1, 3}), plane({1.5, 3, 4.5}, 1, 3)));
    // Each input gets 1/divisor from every window that covers it.
    auto xg = x.detach().requires_grad_();
    CHECK(allclose(grad(sum(adaptive_avg_pool2d(xg, {1, 3})), xg),
                   plane({1.0 / 2, 1.0 / 2 + 1.0 / 3, 1.0 / 3, 1.0 / 3 + 1.0 / 2, 1.0 / 2}, 1, 5)));
  }

  TEST_CASE("ops.pool: avg pooling is a linear map whose backward is its adjoint") {
    Generator gen(31);
    auto x = randn<double>(Shape{2, 3, 7, 6}, gen).requires_grad_();
    for (int variant = 0; variant < 3; ++variant) {
      CAPTURE(variant);
      auto y = variant == 0 ? avg_pool2d(x, 3, 2, 1) : variant == 1 ? avg_pool2d(x, {2, 3}, Size2d{1, 2}, {1, 0}, false)
                                                                     : adaptive_avg_pool2d(x, {4, 5});
      auto u = randn<double>(y.shape(), gen);
      auto gx = grad(sum(y * u), x);
      // <pool(x), u> = <x, pool*(u)>
      CHECK(sum(y * u).item() == doctest::Approx(sum(x.detach() * gx).item()).epsilon(1e-12));
    }
  }

  TEST_CASE("ops.pool: bad input names the op and the shapes") {
    auto x = zeros<float>(Shape{2, 3, 4, 5});
    METAGRAD_CHECK_ERROR(max_pool2d(x, 6), "max_pool2d", "kernel (6, 6)", "[2, 3, 4, 5]");
    METAGRAD_CHECK_ERROR(max_pool2d(x, 2, 2, 2), "max_pool2d", "padding (2, 2)", "half the kernel");
    METAGRAD_CHECK_ERROR(max_pool2d(zeros<float>(Shape{4, 5}), 2), "max_pool2d", "[4, 5]");
    METAGRAD_CHECK_ERROR(avg_pool2d(x, {2, 6}), "avg_pool2d", "kernel (2, 6)", "[2, 3, 4, 5]");
    METAGRAD_CHECK_ERROR(avg_pool2d(x, 2, 0), "avg_pool2d", "stride (0, 0)");
    METAGRAD_CHECK_ERROR(adaptive_avg_pool2d(x, 0), "adaptive_avg_pool2d", "output size (0, 0)");
    METAGRAD_CHECK_ERROR(max_pool2d(x, 0), "max_pool2d", "kernel (0, 0)");
    METAGRAD_CHECK_ERROR(avg_pool2d(zeros<float>(Shape{1, 2, 3, 4, 5}), 2), "avg_pool2d", "[1, 2, 3, 4, 5]");
    METAGRAD_CHECK_ERROR(avg_pool2d(x, 3, 1, 2), "avg_pool2d", "padding (2, 2)", "kernel (3, 3)");
    METAGRAD_CHECK_ERROR(adaptive_avg_pool2d(zeros<float>(Shape{4, 5}), 2), "adaptive_avg_pool2d", "[4, 5]");
    METAGRAD_CHECK_ERROR(adaptive_avg_pool2d(zeros<float>(Shape{1, 2, 0, 3}), 2), "adaptive_avg_pool2d", "empty plane",
                         "[1, 2, 0, 3]");
  }
}
