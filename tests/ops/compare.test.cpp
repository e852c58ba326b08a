// SPDX-License-Identifier: MIT
#include <cmath>
#include <limits>

#include "metagrad/core/creation.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/compare.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

namespace {
/// The 0/1 result of `op` element by element, for same-shaped a and b.
template <class T, class Op>
Tensor<T> reference(const Tensor<T>& a, const Tensor<T>& b, Op op) {
  auto out = Tensor<T>::empty(a.shape());
  for (std::int64_t i = 0; i < a.numel(); ++i) out.fresh_data()[i] = op(a.data()[i], b.data()[i]) ? T(1) : T(0);
  return out;
}
}  // namespace

TEST_SUITE("ops.compare") {
  TEST_CASE("ops.compare: tensor, scalar and broadcast forms") {
    auto a = tensor<double>({{1, 2, 3}, {4, 5, 6}});
    auto b = tensor<double>({{3, 2, 1}, {4, 0, 7}});
    CHECK(allclose(eq(a, b), tensor<double>({{0, 1, 0}, {1, 0, 0}}), 0, 0));
    CHECK(allclose(ne(a, b), tensor<double>({{1, 0, 1}, {0, 1, 1}}), 0, 0));
    CHECK(allclose(lt(a, b), tensor<double>({{1, 0, 0}, {0, 0, 1}}), 0, 0));
    CHECK(allclose(le(a, b), tensor<double>({{1, 1, 0}, {1, 0, 1}}), 0, 0));
    CHECK(allclose(gt(a, b), tensor<double>({{0, 0, 1}, {0, 1, 0}}), 0, 0));
    CHECK(allclose(ge(a, b), tensor<double>({{0, 1, 1}, {1, 1, 0}}), 0, 0));
    CHECK(allclose(eq(a, 5.0), tensor<double>({{0, 0, 0}, {0, 1, 0}}), 0, 0));
    CHECK(allclose(ne(a, 5.0), tensor<double>({{1, 1, 1}, {1, 0, 1}}), 0, 0));
    CHECK(allclose(lt(a, 3.0), tensor<double>({{1, 1, 0}, {0, 0, 0}}), 0, 0));
    CHECK(allclose(le(a, 3.0), tensor<double>({{1, 1, 1}, {0, 0, 0}}), 0, 0));
    CHECK(allclose(gt(a, 3.0), tensor<double>({{0, 0, 0}, {1, 1, 1}}), 0, 0));
    CHECK(allclose(ge(a, 3.0), tensor<double>({{0, 0, 1}, {1, 1, 1}}), 0, 0));
    // [3, 1] against [1, 4], and [2, 3, 5] against [5].
    auto col = tensor<float>({{0}, {1}, {2}});
    auto row = tensor<float>({{0, 1, 2, 3}});
    CHECK(allclose(lt(col, row), tensor<float>({{0, 1, 1, 1}, {0, 0, 1, 1}, {0, 0, 0, 1}}), 0, 0));
    auto cube = arange<float>(30.0f);
    auto c3 = reshape(cube, {2, 3, 5});
    auto r5 = tensor<float>({0, 6, 12, 18, 24});
    auto m = ge(c3, r5);
    REQUIRE(m.shape() == Shape({2, 3, 5}));
    for (std::int64_t i = 0; i < 30; ++i) CHECK(m.data()[i] == (i >= 6 * (i % 5) ? 1.0f : 0.0f));
  }

  TEST_CASE("ops.compare: the vectorised path agrees with scalar comparisons, NaN and ties included") {
    // An odd length, so both the packet loop and its scalar tail run; many exact ties.
    Generator gen(9);
    const std::int64_t n = 1031;
    auto a = Tensor<float>::empty(Shape{n}), b = Tensor<float>::empty(Shape{n});
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    for (std::int64_t i = 0; i < n; ++i) {
      a.fresh_data()[i] = static_cast<float>(gen.below(5)) - 2;
      b.fresh_data()[i] = static_cast<float>(gen.below(5)) - 2;
    }
    a.fresh_data()[3] = nan;
    b.fresh_data()[20] = nan;
    a.fresh_data()[40] = inf;
    b.fresh_data()[40] = inf;
    a.fresh_data()[n - 1] = nan;
    CHECK(allclose(eq(a, b), reference(a, b, [](float x, float y) { return x == y; }), 0, 0));
    CHECK(allclose(ne(a, b), reference(a, b, [](float x, float y) { return x != y; }), 0, 0));
    CHECK(allclose(lt(a, b), reference(a, b, [](float x, float y) { return x < y; }), 0, 0));
    CHECK(allclose(le(a, b), reference(a, b, [](float x, float y) { return x <= y; }), 0, 0));
    CHECK(allclose(gt(a, b), reference(a, b, [](float x, float y) { return x > y; }), 0, 0));
    CHECK(allclose(ge(a, b), reference(a, b, [](float x, float y) { return x >= y; }), 0, 0));
    CHECK(ne(a, b)(3) == 1.0f);  // NaN != anything
    CHECK(eq(a, b)(3) == 0.0f);
  }

  TEST_CASE("ops.compare: results are constants that never record") {
    auto x = tensor<double>({-1.0, 2.0}).requires_grad_();
    for (const auto& r : {eq(x, x), ne(x, 0.0), lt(x, x), le(x, 1.0), gt(x, 0.0), ge(x, x), sign(x), is_finite(x), is_nan(x)}) {
      CHECK_FALSE(r.requires_grad());
      CHECK_FALSE(r.grad_fn());
    }
    // As a mask: x * (x > 0) is relu, and only the x factor carries a gradient.
    auto y = mul(x, gt(x, 0.0));
    CHECK(allclose(y, tensor<double>({0, 2}), 0, 0));
  }

  TEST_CASE("ops.sign: -1, 0, 1, with NaN propagated") {
    const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
    auto s = sign(tensor<double>({-3.5, -0.0, 0.0, 2.0, inf, -inf, nan}));
    CHECK(s(0) == -1.0);
    CHECK(s(1) == 0.0);
    CHECK(s(2) == 0.0);
    CHECK(s(3) == 1.0);
    CHECK(s(4) == 1.0);
    CHECK(s(5) == -1.0);
    CHECK(std::isnan(s(6)));
    auto sf = sign(tensor<float>({-1e-30f, 1e-30f, 7.0f}));
    CHECK(allclose(sf, tensor<float>({-1, 1, 1}), 0, 0));
  }

  TEST_CASE("ops.compare: finiteness tests") {
    const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
    auto x = tensor<double>({1.0, nan, inf, -inf, -0.0, 1e308});
    CHECK(allclose(is_finite(x), tensor<double>({1, 0, 0, 0, 1, 1}), 0, 0));
    CHECK(allclose(is_nan(x), tensor<double>({0, 1, 0, 0, 0, 0}), 0, 0));
    CHECK_FALSE(all_finite(x));
    CHECK(all_finite(tensor<double>({1.0, -2.0, 1e308})));
    CHECK(all_finite(zeros<double>(Shape{0})));
    CHECK_FALSE(all_finite(tensor<float>({1.0f, std::numeric_limits<float>::infinity()})));
  }

  TEST_CASE("ops.compare: index tensors compare too") {
    auto labels = from_vector<std::int64_t>({0, 3, 2, 2});
    auto preds = from_vector<std::int64_t>({0, 1, 2, 3});
    auto hits = eq(labels, preds);
    CHECK(hits.to_vector() == std::vector<std::int64_t>({1, 0, 1, 0}));
    CHECK(gt(labels, std::int64_t{1}).to_vector() == std::vector<std::int64_t>({0, 1, 1, 1}));
  }

  TEST_CASE("ops.compare: bad input is a clear error") {
    auto a = zeros<double>(Shape{2, 3});
    auto b = zeros<double>(Shape{2});
    METAGRAD_CHECK_ERROR(eq(a, b), "eq", "[2, 3]", "[2]", "broadcast");
    METAGRAD_CHECK_ERROR(ne(a, b), "ne", "[2, 3]", "[2]");
    METAGRAD_CHECK_ERROR(lt(a, b), "lt", "[2, 3]", "[2]");
    METAGRAD_CHECK_ERROR(le(b, a), "le", "[2]", "[2, 3]");
    METAGRAD_CHECK_ERROR(gt(a, b), "gt", "[2, 3]", "[2]");
    METAGRAD_CHECK_ERROR(ge(a, b), "ge", "[2, 3]", "[2]");
  }
}
