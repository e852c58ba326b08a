// SPDX-License-Identifier: MIT
#include <cmath>
#include <limits>
#include <type_traits>

#include "metagrad/ops/binary.hpp"
#include "metagrad/ops/reduction.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using metagrad::testing::OpRow;
using V = std::vector<Tensor<double>>;

namespace {
/// Values on a grid of spacing 0.4 (plus `offset`) with jitter below 0.05: two draws with offsets
/// 0 and 0.2 stay at least 0.1 apart, so maximum/minimum never meet a tie under finite differences.
Tensor<double> gridded(const Shape& shape, Generator& gen, double offset) {
  auto t = Tensor<double>::empty(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.fresh_data()[i] = 0.4 * (static_cast<double>(gen.below(9)) - 4) + offset + 0.1 * (gen.uniform() - 0.5);
  return t;
}

/// A fixed 0/1 mask with some of each.
Tensor<double> mask(const Shape& shape, std::uint64_t seed) {
  Generator gen(seed);
  auto m = bernoulli<double>(shape, 0.5, gen);
  m.fresh_data()[0] = 1;
  if (m.numel() > 1) m.fresh_data()[1] = 0;
  return m;
}

/// Element of `t` at the multi-index `idx` of an output of rank 3 it broadcasts to.
double at_broadcast(const Tensor<double>& t, std::int64_t i, std::int64_t j, std::int64_t k) {
  const std::int64_t idx[3] = {i, j, k};
  std::int64_t flat = 0;
  for (int d = 0; d < t.dim(); ++d) {
    const std::int64_t e = t.shape()[d], v = idx[3 - t.dim() + d];
    flat = flat * e + (e == 1 ? 0 : v);
  }
  return t.data()[flat];
}
}  // namespace

TEST_SUITE("ops.binary") {
  TEST_CASE("ops.binary: op table, pow, maximum, minimum, where, with broadcasting") {
    const std::vector<OpRow> rows = {
        {"pow {3,1} ^ {1,4}", {{3, 1}, {1, 4}}, [](const V& a) { return pow(a[0], a[1]); }, 2, -2, 2, {},
         [](Generator& gen) { return V{rand<double>(Shape{3, 1}, gen, 0.5, 2.0), rand<double>(Shape{1, 4}, gen, -2.0, 2.0)}; }},
        {"pow {2,3,5} ^ {5} order 3", {{2, 3, 5}, {5}}, [](const V& a) { return pow(a[0], a[1]); }, 3, -2, 2, {},
         [](Generator& gen) { return V{rand<double>(Shape{2, 3, 5}, gen, 0.5, 2.0), rand<double>(Shape{5}, gen, -1.5, 1.5)}; }},
        {"pow scalar base", {{3, 5}}, [](const V& a) { return pow(2.5, a[0]); }, 3},
        {"pow scalar base below 1", {{2, 3, 4}}, [](const V& a) { return pow(0.4, a[0]) * a[0]; }, 3},
        {"maximum {3,1} {1,4}", {{3, 1}, {1, 4}}, [](const V& a) { return maximum(a[0], a[1]); }, 2, -2, 2, {},
         [](Generator& gen) { return V{gridded(Shape{3, 1}, gen, 0), gridded(Shape{1, 4}, gen, 0.2)}; }},
        {"maximum * a order 3", {{2, 3, 5}, {5}}, [](const V& a) { return maximum(a[0], a[1]) * a[0]; }, 3, -2, 2, {},
         [](Generator& gen) { return V{gridded(Shape{2, 3, 5}, gen, 0), gridded(Shape{5}, gen, 0.2)}; }},
        {"minimum {2,3,5} {5}", {{2, 3, 5}, {5}}, [](const V& a) { return minimum(a[0], a[1]); }, 2, -2, 2, {},
         [](Generator& gen) { return V{gridded(Shape{2, 3, 5}, gen, 0.2), gridded(Shape{5}, gen, 0)}; }},
        {"minimum {3,1} {1,4} * b", {{3, 1}, {1, 4}}, [](const V& a) { return minimum(a[0], a[1]) * a[1]; }, 3, -2, 2, {},
         [](Generator& gen) { return V{gridded(Shape{3, 1}, gen, 0.2), gridded(Shape{1, 4}, gen, 0)}; }},
        {"maximum / minimum with a scalar", {{3, 5}}, [](const V& a) { return maximum(a[0], 0.3) + minimum(-0.1, a[0]); }, 2,
         -2, 2, {}, [](Generator& gen) { return V{gridded(Shape{3, 5}, gen, 0)}; }},
        {"where {3,1} {1,4} {3,4}", {{1, 4}, {3, 4}},
         [](const V& a) { return where(mask(Shape{3, 1}, 1), a[0], a[1]); }},
        {"where {5} {2,3,5} scalar, order 3", {{2, 3, 5}},
         [](const V& a) { return where(mask(Shape{5}, 2), a[0] * a[0], 0.5); }, 3},
        {"where {2,3,1} scalar {3,5}", {{3, 5}}, [](const V& a) { return where(mask(Shape{2, 3, 1}, 3), -1.5, a[0]); }},
        {"where * b order 3", {{3, 4}, {4}},
         [](const V& a) { return where(mask(Shape{3, 4}, 4), a[0] * a[1], a[1]) * a[1]; }, 3},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.bias_share: op table, the share and its fused backward, to third order") {
    // x and y on a grid offset from 0 by at least 0.15, so |x| and |y| never meet their kink.
    const auto parts = [](Shape s, Shape b) {
      return [s, b](Generator& gen) { return V{gridded(s, gen, 0.2), gridded(s, gen, 0.2), rand<double>(b, gen, -2, 2)}; };
    };
    const std::vector<OpRow> rows = {
        {"bias_share, conv bias [3,1,1] on [2,3,2,3]", {{2, 3, 2, 3}, {2, 3, 2, 3}, {3, 1, 1}},
         [](const V& a) { return bias_share(a[0], a[1], a[2]); }, 2, -2, 2, {}, parts({2, 3, 2, 3}, {3, 1, 1})},
        {"bias_share, linear bias [5] on [3,5], order 3", {{3, 5}, {3, 5}, {5}},
         [](const V& a) { return bias_share(a[0], a[1], a[2]) * a[0]; }, 3, -2, 2, {}, parts({3, 5}, {5})},
        {"bias_share, scalar b", {{2, 3}, {2, 3}, {}}, [](const V& a) { return bias_share(a[0], a[1], a[2]); }, 2, -2, 2,
         {}, parts({2, 3}, {})},
        {"bias_share_backward, order 3", {{3, 4}, {3, 4}, {3, 4}},
         [](const V& a) { return bias_share_backward(a[0], a[1], a[2]); }, 3, -2, 2, {},
         [](Generator& gen) {
           return V{rand<double>(Shape{3, 4}, gen, -2, 2), gridded(Shape{3, 4}, gen, 0.2), gridded(Shape{3, 4}, gen, 0.2)};
         }},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE_TEMPLATE("ops.bias_share: the composed form's values bit for bit, and its gradients, zeros included", T, float,
                     double) {
    Generator gen(11);
    auto x = rand<T>(Shape{4, 3, 5, 6}, gen, -3, 3), y = rand<T>(Shape{4, 3, 5, 6}, gen, -3, 3);
    // Zeros where the composed form's abs has its kink: x alone, y alone, both.
    x.fresh_data()[0] = 0;
    y.fresh_data()[1] = 0;
    x.fresh_data()[2] = 0;
    y.fresh_data()[2] = 0;
    const auto b = rand<T>(Shape{3, 1, 1}, gen, -1, 1);
    const auto composed = [](const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& b) {
      const T eps = T(1e-20);
      return mul(b, div(add(abs(x), eps), add(add(abs(x), abs(y)), T(2) * eps)));
    };
    const auto fused = bias_share(x, y, b), want = composed(x, y, b);
    CHECK(fused.shape() == want.shape());
    bool same = true;
    for (std::int64_t i = 0; i < fused.numel(); ++i) same = same && fused.data()[i] == want.data()[i];
    CHECK(same);
    // Both zero: b splits evenly.
    CHECK(fused.data()[2] == b.data()[0] / 2);
    // The two shares make up b.
    const auto whole = add(bias_share(x, y, b), bias_share(y, x, b));
    CHECK(allclose(whole, broadcast_to(b, x.shape()), T(4) * std::numeric_limits<T>::epsilon(), 0));

    const auto xg = x.detach().requires_grad_(), yg = y.detach().requires_grad_(), bg = b.detach().requires_grad_();
    const auto w = rand<T>(x.shape(), gen, -1, 1);
    const auto got = grad(sum(mul(bias_share(xg, yg, bg), w)), {xg, yg, bg});
    const auto ref = grad(sum(mul(composed(xg, yg, bg), w)), {xg, yg, bg});
    const T tol = std::is_same_v<T, float> ? T(1e-5) : T(1e-13);
    for (int k = 0; k < 3; ++k) CHECK(allclose(got[static_cast<std::size_t>(k)], ref[static_cast<std::size_t>(k)], tol, tol));
    // At x = 0 the gradient in x is 0 (abs's sign(0) convention), as in the composed form.
    CHECK(got[0].data()[0] == T(0));
  }

  TEST_CASE("ops.pow: values with broadcasting") {
    auto a = tensor<double>({{2}, {3}});   // [2, 1]
    auto b = tensor<double>({{0.5, 2, -1}});  // [1, 3]
    CHECK(allclose(pow(a, b), tensor<double>({{std::sqrt(2.0), 4, 0.5}, {std::sqrt(3.0), 9, 1.0 / 3}}), 0, 1e-15));
    CHECK(allclose(pow(tensor<double>({-2, -2}), tensor<double>({3, 2})), tensor<double>({-8, 4}), 0, 0));
    CHECK(allclose(pow(2.0, tensor<double>({-1, 0, 3, 0.5})), tensor<double>({0.5, 1, 8, std::sqrt(2.0)}), 0, 1e-15));
    CHECK(std::isnan(pow(tensor<double>({-2}), tensor<double>({0.5})).item()));
  }

  TEST_CASE("ops.pow: gradients, including a zero base and a zero exponent") {
    auto a = tensor<double>({2.0, 0.0, 0.0, 3.0}).requires_grad_();
    auto b = tensor<double>({3.0, 2.0, 0.0, 0.0}).requires_grad_();
    auto gs = grad(sum(pow(a, b)), std::vector{a, b});
    // d/da = b a^(b-1): 12, 0, 0 (b == 0, not 0 * 0^-1), 0;  d/db = a^b log a: 8 log 2, 0 (not 0 * -inf), 0, log 3.
    CHECK(allclose(gs[0], tensor<double>({12, 0, 0, 0}), 0, 1e-15));
    CHECK(allclose(gs[1], tensor<double>({8 * std::log(2.0), 0, 0, std::log(3.0)}), 0, 1e-15));
    // Broadcast gradients are summed back: b of shape [1] collects every element's share.
    auto x = tensor<double>({1.5, 2.0, 2.5}).requires_grad_();
    auto e = tensor<double>({2.0}).requires_grad_();
    auto ge = grad(sum(pow(x, e)), std::vector{x, e});
    CHECK(allclose(ge[0], tensor<double>({3, 4, 5}), 0, 1e-15));
    CHECK(ge[1].item() == doctest::Approx(2.25 * std::log(1.5) + 4 * std::log(2.0) + 6.25 * std::log(2.5)).epsilon(1e-14));
    // Scalar base: d/dx s^x = s^x log s; for s == 0 it is 0 where x >= 0.
    auto z = tensor<double>({0.0, 1.0, 2.0}).requires_grad_();
    CHECK(allclose(grad(sum(pow(3.0, z)), z), tensor<double>({std::log(3.0), 3 * std::log(3.0), 9 * std::log(3.0)}), 0, 1e-15));
    CHECK(allclose(grad(sum(pow(0.0, z)), z), tensor<double>({0, 0, 0}), 0, 0));
  }

  TEST_CASE("ops.maximum: values, NaN, and ties split the gradient 0.5/0.5") {
    const double nan = std::nan("");
    auto a = tensor<double>({1.0, 5.0, 3.0, nan, 2.0}).requires_grad_();
    auto b = tensor<double>({2.0, 5.0, 1.0, 0.0, nan}).requires_grad_();
    auto mx = maximum(a, b), mn = minimum(a, b);
    CHECK(mx(0) == 2.0);
    CHECK(mx(1) == 5.0);
    CHECK(mx(2) == 3.0);
    CHECK(std::isnan(mx(3)));
    CHECK(std::isnan(mx(4)));
    CHECK(mn(0) == 1.0);
    CHECK(mn(2) == 1.0);
    CHECK(std::isnan(mn(3)));
    // Where a side is NaN, PyTorch's weights give the whole gradient to both sides.
    auto gmax = grad(sum(maximum(a, b)), std::vector{a, b});
    CHECK(allclose(gmax[0], tensor<double>({0, 0.5, 1, 1, 1}), 0, 0));
    CHECK(allclose(gmax[1], tensor<double>({1, 0.5, 0, 1, 1}), 0, 0));
    auto gmin = grad(sum(minimum(a, b)), std::vector{a, b});
    CHECK(allclose(gmin[0], tensor<double>({1, 0.5, 0, 1, 1}), 0, 0));
    CHECK(allclose(gmin[1], tensor<double>({0, 0.5, 1, 1, 1}), 0, 0));
    // Broadcast: b of shape [1] against four elements, one of them a tie.
    auto x = tensor<double>({-1.0, 0.5, 2.0, 3.0}).requires_grad_();
    auto s = tensor<double>({0.5}).requires_grad_();
    auto gb = grad(sum(maximum(x, s)), std::vector{x, s});
    CHECK(allclose(gb[0], tensor<double>({0, 0.5, 1, 1}), 0, 0));
    CHECK(gb[1].item() == 1.5);
    // The scalar form treats a tie the same way.
    CHECK(allclose(grad(sum(maximum(x, 0.5)), x), tensor<double>({0, 0.5, 1, 1}), 0, 0));
    CHECK(allclose(grad(sum(minimum(0.5, x)), x), tensor<double>({1, 0.5, 0, 0}), 0, 0));
  }

  TEST_CASE("ops.where: values and gradients with broadcasting") {
    auto cond = tensor<double>({{1}, {0}, {2}});                     // [3, 1]; any nonzero is true
    auto a = tensor<double>({{1, 2, 3, 4}}).requires_grad_();        // [1, 4]
    auto b = tensor<double>({{10, 20, 30, 40}, {50, 60, 70, 80}, {90, 100, 110, 120}}).requires_grad_();  // [3, 4]
    auto y = where(cond, a, b);
    CHECK(allclose(y, tensor<double>({{1, 2, 3, 4}, {50, 60, 70, 80}, {1, 2, 3, 4}}), 0, 0));
    auto gs = grad(sum(mul(y, y)), std::vector{a, b});
    CHECK(allclose(gs[0], tensor<double>({{4, 8, 12, 16}}), 0, 0));  // two rows chose a: 2 * 2a
    CHECK(allclose(gs[1], tensor<double>({{0, 0, 0, 0}, {100, 120, 140, 160}, {0, 0, 0, 0}}), 0, 0));
    // Scalar branches, and NaN in the condition counts as true.
    auto s = where(tensor<double>({0, 1, std::nan("")}), tensor<double>({1, 2, 3}), -1.0);
    CHECK(allclose(s, tensor<double>({-1, 2, 3}), 0, 0));
    CHECK(allclose(where(tensor<double>({0, 1}), 7.0, tensor<double>({1, 2})), tensor<double>({1, 7}), 0, 0));
    // A condition that requires grad is a constant mask: no gradient reaches it.
    auto c = tensor<double>({1.0, 0.0}).requires_grad_();
    auto v = tensor<double>({3.0, 4.0}).requires_grad_();
    CHECK_FALSE(where(c, v, 0.0).grad_fn()->inputs()[0].is_same(c));
    CHECK(allclose(grad(sum(where(c, v, 0.0)), v), tensor<double>({1, 0}), 0, 0));
  }

  TEST_CASE("ops.where: every broadcasting layout matches an index-by-index reference") {
    Generator gen(5);
    struct Case {
      Shape c, a, b;
    };
    const std::vector<Case> cases = {
        {{2, 3, 5}, {2, 3, 5}, {2, 3, 5}}, {{2, 3, 5}, {1}, {2, 3, 5}},   {{5}, {2, 3, 5}, {}},
        {{2, 3, 1}, {1, 3, 5}, {5}},       {{3, 1}, {2, 1, 5}, {2, 3, 1}}, {{1, 1, 5}, {2, 3, 1}, {1, 3, 1}},
    };
    for (const auto& k : cases) {
      CAPTURE(k.c);
      CAPTURE(k.a);
      CAPTURE(k.b);
      auto c = bernoulli<double>(k.c, 0.5, gen), a = randn<double>(k.a, gen), b = randn<double>(k.b, gen);
      auto y = where(c, a, b);
      REQUIRE(y.shape() == Shape({2, 3, 5}));
      bool same = true;
      for (std::int64_t i = 0; i < 2; ++i)
        for (std::int64_t j = 0; j < 3; ++j)
          for (std::int64_t l = 0; l < 5; ++l)
            same = same && y(i, j, l) == (at_broadcast(c, i, j, l) != 0 ? at_broadcast(a, i, j, l) : at_broadcast(b, i, j, l));
      CHECK(same);
    }
    // Large enough to be split across threads, with a scalar branch.
    auto c = bernoulli<float>(Shape{70001}, 0.3, gen);
    auto a = rand<float>(Shape{70001}, gen);
    auto y = where(c, a, -1.0f);
    bool same = true;
    for (std::int64_t i = 0; i < y.numel(); ++i) same = same && y.data()[i] == (c.data()[i] != 0 ? a.data()[i] : -1.0f);
    CHECK(same);
  }

  TEST_CASE("ops.binary: bad input is a clear error") {
    auto a = zeros<double>(Shape{2, 3});
    auto b = zeros<double>(Shape{4});
    METAGRAD_CHECK_ERROR(pow(a, b), "pow", "[2, 3]", "[4]", "broadcast");
    METAGRAD_CHECK_ERROR(maximum(a, b), "maximum", "[2, 3]", "[4]", "broadcast");
    METAGRAD_CHECK_ERROR(minimum(b, a), "minimum", "[4]", "[2, 3]", "broadcast");
    METAGRAD_CHECK_ERROR(where(b, a, a), "where", "[4]", "[2, 3]", "broadcast");
    METAGRAD_CHECK_ERROR(where(zeros<double>(Shape{3}), a, zeros<double>(Shape{3, 1})), "where", "[3]", "[2, 3]", "[3, 1]");
    METAGRAD_CHECK_ERROR(where(ones<double>(Shape{2, 3}), a, zeros<double>(Shape{3, 3})), "where", "[2, 3]", "[3, 3]");
    METAGRAD_CHECK_ERROR(bias_share(a, zeros<double>(Shape{3, 2}), b), "bias_share", "[2, 3]", "[3, 2]", "one shape");
    METAGRAD_CHECK_ERROR(bias_share(a, a, b), "bias_share", "[4]", "[2, 3]");
    METAGRAD_CHECK_ERROR(bias_share(a, a, zeros<double>(Shape{4, 2, 3})), "bias_share", "[4, 2, 3]", "[2, 3]", "broadcast");
    METAGRAD_CHECK_ERROR(bias_share_backward(a, a, zeros<double>(Shape{2, 1})), "bias_share_backward", "[2, 3]", "[2, 1]");
  }
}
