// SPDX-License-Identifier: MIT
#include <cmath>
#include <limits>

#include "metagrad/ops/reduction.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using metagrad::testing::OpRow;
using V = std::vector<Tensor<double>>;

namespace {
/// Element [i, j, k] of a rank-3 tensor.
double at3(const Tensor<double>& t, std::int64_t i, std::int64_t j, std::int64_t k) { return t(i, j, k); }
}  // namespace

TEST_SUITE("ops.reduction") {
  TEST_CASE("ops.reduction: op table, orders 1-2 (3 for logsumexp and var)") {
    const std::vector<OpRow> rows = {
        {"sum {0,2}", {{3, 5, 2}}, [](const V& a) { return sum(a[0] * a[0], {0, 2}); }},
        {"sum {1,2} keepdim (one merged run)", {{3, 5, 2}}, [](const V& a) { return sum(a[0] * a[0], {1, 2}, true); }},
        {"mean {1}", {{3, 5, 2}}, [](const V& a) { return mean(a[0] * a[0], {1}); }},
        {"mean {0,2} keepdim", {{3, 5, 2}}, [](const V& a) { return mean(a[0], {0, -1}, true) * a[0]; }},
        {"var {0,2}", {{3, 5, 2}}, [](const V& a) { return var(a[0], {0, 2}); }, 3},
        {"var {1} population keepdim", {{4, 3}}, [](const V& a) { return var(a[0], {1}, Correction{0}, true); }},
        {"var all", {{3, 5}}, [](const V& a) { return var(a[0]); }},
        {"stddev {0,2}", {{3, 5, 2}}, [](const V& a) { return stddev(a[0], {0, 2}); }},
        {"stddev {-1} population", {{3, 4}}, [](const V& a) { return stddev(a[0], {-1}, false); }},
        {"max values dim 1", {{3, 5, 2}}, [](const V& a) { return max(a[0] * a[0], 1).values; }},
        {"max values dim 0 keepdim", {{3, 5}}, [](const V& a) { return max(a[0], 0, true).values; }},
        {"min values dim -1", {{3, 5, 2}}, [](const V& a) { return min(a[0] * a[0], -1).values; }},
        {"min values dim 0 keepdim", {{3, 5}}, [](const V& a) { return min(a[0], 0, true).values * a[0]; }},
        {"amax {0,2}", {{3, 5, 2}}, [](const V& a) { return amax(a[0] * a[0], {0, 2}); }},
        {"amin all", {{3, 5}}, [](const V& a) { return amin(a[0]); }},
        {"logsumexp {0,2}", {{3, 5, 2}}, [](const V& a) { return logsumexp(a[0], {0, 2}); }, 3},
        {"logsumexp {1,2} keepdim", {{3, 5, 2}}, [](const V& a) { return logsumexp(a[0] * a[0], {1, 2}, true); }},
        {"logsumexp all", {{4, 3}}, [](const V& a) { return logsumexp(a[0]); }},
        {"norm L2 {0,2}", {{3, 5, 2}}, [](const V& a) { return norm(a[0], 2, {0, 2}); }, 3},
        {"norm L2 all", {{3, 5}}, [](const V& a) { return norm(a[0]); }},
        {"norm L1 {1}", {{3, 5, 2}}, [](const V& a) { return norm(a[0] * a[0] * a[0], 1, {1}); }},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.sum: over non-adjacent dims matches a hand loop") {
    Generator gen(3);
    const auto x = randn<double>(Shape{3, 5, 2}, gen);
    const auto s = sum(x, {0, 2});
    REQUIRE(s.shape() == Shape{5});
    for (std::int64_t j = 0; j < 5; ++j) {
      double expect = 0;
      for (std::int64_t i = 0; i < 3; ++i)
        for (std::int64_t k = 0; k < 2; ++k) expect += at3(x, i, j, k);
      CHECK(s(j) == doctest::Approx(expect).epsilon(1e-14));
    }
    // A rank-0 tensor reduced over dim 0 is itself, as in PyTorch.
    CHECK(sum(scalar_tensor<double>(2.5), {0}).item() == 2.5);
  }

  TEST_CASE("ops.var: unbiased, population and per-dim values") {
    const auto x = tensor<double>({1, 2, 3, 4});
    CHECK(var(x).item() == doctest::Approx(5.0 / 3.0).epsilon(1e-15));
    CHECK(var(x, {}, false).item() == doctest::Approx(1.25).epsilon(1e-15));
    CHECK(var(x, {0}, Correction{2}).item() == doctest::Approx(2.5).epsilon(1e-15));
    CHECK(stddev(x).item() == doctest::Approx(std::sqrt(5.0 / 3.0)).epsilon(1e-15));
    const auto m = tensor<double>({{1, 2, 3}, {2, 4, 6}});
    CHECK(allclose(var(m, {1}), tensor<double>({1.0, 4.0}), 1e-15));
    CHECK(allclose(var(m, {0}, false, true), tensor<double>({{0.25, 1.0, 2.25}}), 1e-15));
    // Two passes keep var of a large offset exact where E[x²] - E[x]² would lose it all.
    const auto big = tensor<double>({1e8 + 1, 1e8 + 2, 1e8 + 3});
    CHECK(var(big).item() == 1.0);
  }

  TEST_CASE("ops.stddev: the gradient is 0 where all reduced elements are equal") {
    auto x = tensor<double>({{2, 2, 2}, {1, 2, 3}}).requires_grad_();
    const auto g = grad(sum(stddev(x, {1})), x);
    CHECK(allclose(g, tensor<double>({{0, 0, 0}, {-0.5, 0, 0.5}}), 1e-15));
  }

  TEST_CASE("ops.max: values, indices, ties to the first index, gradient to that index") {
    auto x = tensor<double>({{1, 7, 7, 2}, {5, 0, 5, -1}, {3, 3, 3, 3}}).requires_grad_();
    const auto [values, indices] = max(x, 1);
    CHECK(values.to_vector() == std::vector<double>{7, 5, 3});
    CHECK(indices.to_vector() == std::vector<std::int64_t>{1, 0, 0});
    const auto g = grad(sum(values * tensor<double>({1, 2, 3})), x);
    CHECK(allclose(g, tensor<double>({{0, 1, 0, 0}, {2, 0, 0, 0}, {3, 0, 0, 0}}), 0));

    const auto [mins, argmins] = min(x, 0, true);
    CHECK(mins.shape() == Shape{1, 4});
    CHECK(mins.to_vector() == std::vector<double>{1, 0, 3, -1});
    CHECK(argmins.shape() == Shape{1, 4});
    CHECK(argmins.to_vector() == std::vector<std::int64_t>{0, 1, 2, 1});
    const auto gm = grad(sum(mins), x);
    CHECK(allclose(gm, tensor<double>({{1, 0, 0, 0}, {0, 1, 0, 1}, {0, 0, 1, 0}}), 0));
  }

  TEST_CASE("ops.max: along a middle dim of a rank-3 tensor") {
    Generator gen(11);
    const auto x = randn<double>(Shape{3, 5, 2}, gen);
    const auto [values, indices] = max(x, 1);
    REQUIRE(values.shape() == Shape{3, 2});
    for (std::int64_t i = 0; i < 3; ++i)
      for (std::int64_t k = 0; k < 2; ++k) {
        std::int64_t best = 0;
        for (std::int64_t j = 1; j < 5; ++j)
          if (at3(x, i, j, k) > at3(x, i, best, k)) best = j;
        CHECK(indices(i, k) == best);
        CHECK(values(i, k) == at3(x, i, best, k));
      }
  }

  TEST_CASE("ops.max: NaN is the max and the min, as in PyTorch") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const auto x = tensor<double>({{1, nan, 3, nan}, {4, 2, 3, 0}});
    const auto mx = max(x, 1);
    CHECK(std::isnan(mx.values(0)));
    CHECK(mx.indices(0) == 1);
    CHECK(mx.values(1) == 4);
    CHECK(std::isnan(min(x, 1).values(0)));
    CHECK(argmax(x, 1).to_vector() == std::vector<std::int64_t>{1, 0});
    CHECK(std::isnan(amax(x).item()));
    // Along dim 0 (the strided path): a NaN wins, and ties keep the first row.
    const auto [cols, rows] = max(x, 0);
    CHECK(rows.to_vector() == std::vector<std::int64_t>{1, 0, 0, 0});
    CHECK(cols(0) == 4);
    CHECK(std::isnan(cols(1)));
    CHECK(cols(2) == 3);
    CHECK(std::isnan(amin(x, {0})(3)));
  }

  TEST_CASE("ops.amax: ties share the gradient equally; argmax/argmin") {
    auto x = tensor<double>({{1, 3, 3}, {0, -2, 5}}).requires_grad_();
    CHECK(amax(x, {1}).to_vector() == std::vector<double>{3, 5});
    CHECK(amin(x).item() == -2);
    const auto g = grad(sum(amax(x, {1})), x);
    CHECK(allclose(g, tensor<double>({{0, 0.5, 0.5}, {0, 0, 1}}), 0));
    const auto ga = grad(amin(x), x);
    CHECK(allclose(ga, tensor<double>({{0, 0, 0}, {0, 1, 0}}), 0));

    const auto flat = argmax(x);
    CHECK(flat.dim() == 0);
    CHECK(flat.item() == 5);
    CHECK(argmin(x).item() == 4);
    CHECK(argmax(x, 0).to_vector() == std::vector<std::int64_t>{0, 0, 1});
    CHECK(argmin(x, 1, true).shape() == Shape{2, 1});
  }

  TEST_CASE("ops.logsumexp: stable for large and infinite inputs") {
    CHECK(logsumexp(tensor<double>({1000, 1000})).item() == doctest::Approx(1000 + std::log(2.0)).epsilon(1e-15));
    // float: the kernel alone (the op adds no arithmetic), which keeps this file's compile time down.
    CHECK(cpu::logsumexp_dim(tensor<float>({1000, 1000}), 0, false).item() == 1000 + std::log(2.0f));
    CHECK(logsumexp(tensor<double>({-1000, -1000})).item() == doctest::Approx(-1000 + std::log(2.0)).epsilon(1e-15));
    const double inf = std::numeric_limits<double>::infinity();
    CHECK(logsumexp(tensor<double>({-inf, -inf})).item() == -inf);
    CHECK(logsumexp(tensor<double>({-inf, 0.0})).item() == 0.0);
    CHECK(logsumexp(tensor<double>({inf, 1.0})).item() == inf);
    CHECK(logsumexp(zeros<double>(Shape{2, 0}), {1}).to_vector() == std::vector<double>{-inf, -inf});

    Generator gen(5);
    const auto x = randn<double>(Shape{3, 5, 2}, gen);
    const auto l = logsumexp(x, {0, 2});
    for (std::int64_t j = 0; j < 5; ++j) {
      double s = 0;
      for (std::int64_t i = 0; i < 3; ++i)
        for (std::int64_t k = 0; k < 2; ++k) s += std::exp(at3(x, i, j, k));
      CHECK(l(j) == doctest::Approx(std::log(s)).epsilon(1e-14));
    }
  }

  TEST_CASE("ops.norm: L1 and L2 values and gradients, and the L2 gradient at 0 is 0") {
    auto x = tensor<double>({{3, -4}, {0, 0}}).requires_grad_();
    CHECK(norm(x).item() == 5);
    CHECK(norm(x, 1).item() == 7);
    CHECK(norm(x, 2, {1}).to_vector() == std::vector<double>{5, 0});
    const auto g2 = grad(sum(norm(x, 2, {1})), x);
    CHECK(allclose(g2, tensor<double>({{0.6, -0.8}, {0, 0}}), 1e-15));
    const auto g1 = grad(norm(x, 1), x);
    CHECK(allclose(g1, tensor<double>({{1, -1}, {0, 0}}), 0));
    // The second derivative at 0 is finite (0), not NaN.
    GradOptions<double> keep{.create_graph = true};
    auto z = zeros<double>(Shape{3}).requires_grad_();
    const auto gz = grad(norm(z), z, keep);
    const auto hz = grad(sum(gz), z);
    CHECK(allclose(hz, zeros<double>(Shape{3}), 0));
  }

  TEST_CASE("ops.reduction: a scalar reduces over dim 0 or -1 to itself, as in PyTorch") {
    const auto s = scalar_tensor(1.5);
    for (std::int64_t d : {0, -1}) {
      CAPTURE(d);
      CHECK(sum(s, {d}).item() == 1.5);
      CHECK(mean(s, {d}, true).shape() == Shape{});
      CHECK(amax(s, {d}).item() == 1.5);
      CHECK(max(s, d).values.item() == 1.5);
      CHECK(max(s, d).indices.item() == 0);
      CHECK(logsumexp(s, {d}).item() == 1.5);
    }
    METAGRAD_CHECK_ERROR(sum(s, {1}), "sum", "dim 1", "rank 0");
    METAGRAD_CHECK_ERROR(max(s, -2), "max", "dim -2", "rank 0");
  }

  TEST_CASE("ops.reduction: bad input names the op and the shape") {
    const auto x = ones<double>(Shape{2, 3});
    const auto empty = zeros<double>(Shape{2, 0});
    METAGRAD_CHECK_ERROR(max(empty, 1), "max", "extent 0", "[2, 0]");
    METAGRAD_CHECK_ERROR(min(empty, -1), "min", "extent 0", "[2, 0]");
    METAGRAD_CHECK_ERROR(amax(empty), "amax", "extent 0", "[2, 0]");
    METAGRAD_CHECK_ERROR(argmax(empty), "argmax", "extent 0", "[0]");
    METAGRAD_CHECK_ERROR(max(x, 2), "max", "dim 2", "rank 2");
    METAGRAD_CHECK_ERROR(var(x, {0, 0}), "var", "repeated");
    METAGRAD_CHECK_ERROR(var(ones<double>(Shape{1, 3}), {0}), "var", "correction 1", "[1, 3]");
    METAGRAD_CHECK_ERROR(stddev(empty, {1}), "stddev", "empty", "[2, 0]");
    METAGRAD_CHECK_ERROR(norm(x, 3), "norm", "p = 3", "[2, 3]");
    METAGRAD_CHECK_ERROR(logsumexp(x, {-3}), "logsumexp", "dim -3", "rank 2");
  }
}
