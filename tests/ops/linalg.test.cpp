// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <cmath>
#include <initializer_list>
#include <limits>

#include <Eigen/Core>

#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/reduction.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using metagrad::testing::OpRow;
using V = std::vector<Tensor<double>>;

namespace {
using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A [rows, cols] block of a tensor, as a double matrix.
template <class T>
MatD block(const Tensor<T>& t, std::int64_t offset, std::int64_t rows, std::int64_t cols) {
  MatD m(rows, cols);
  for (std::int64_t i = 0; i < rows * cols; ++i) m.data()[i] = static_cast<double>(t.data()[offset + i]);
  return m;
}

/// op(a) op(b) in double through Eigen, the reference for the float kernels.
template <class T>
MatD reference_mm(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb) {
  MatD ma = block(a, 0, a.size(0), a.size(1)), mb = block(b, 0, b.size(0), b.size(1));
  if (ta) ma.transposeInPlace();
  if (tb) mb.transposeInPlace();
  return ma * mb;
}

bool close(const MatD& a, const MatD& b, double tol) {
  return a.rows() == b.rows() && a.cols() == b.cols() && ((a - b).array().abs() <= tol * (1 + b.array().abs())).all();
}

/// The worst error of c = op(a) op(b), row-major matrices with op(a) [n, k] and op(b) [k, m],
/// against a long double product summed with plain loops, in units of the error bound
/// k·eps·Σ_p |op(a)_ip| |op(b)_pj| of entry (i, j): what rounding in T can cost a k-term dot
/// product in any summation order or blocking (fused multiply-adds round less). The bound scales
/// with the sizes of the products, not with the result, which may cancel to near zero; an operand
/// read with the wrong transpose or leading dimension lands orders of magnitude above 1.
template <class T>
double worst_error_in_bounds(const T* a, const T* b, const T* c, std::int64_t n, std::int64_t k, std::int64_t m,
                             bool ta, bool tb) {
  const long double eps = std::numeric_limits<T>::epsilon();
  double worst = 0;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < m; ++j) {
      long double exact = 0, magnitude = 0;
      for (std::int64_t p = 0; p < k; ++p) {
        const long double x = ta ? a[p * n + i] : a[i * k + p], y = tb ? b[j * k + p] : b[p * m + j];
        exact += x * y;
        magnitude += std::abs(x * y);
      }
      const long double bound = std::max<long double>(k * eps * magnitude, std::numeric_limits<T>::min());
      worst = std::max(worst, static_cast<double>(std::abs(c[i * m + j] - exact) / bound));
    }
  return worst;
}

/// mm for every transpose flag and each {n, k, m} in `sizes`, checked by worst_error_in_bounds.
template <class T>
void check_mm_in_bounds(std::initializer_list<std::array<std::int64_t, 3>> sizes, Generator& gen) {
  for (const auto& [n, k, m] : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const auto a = randn<T>(ta ? Shape{k, n} : Shape{n, k}, gen), b = randn<T>(tb ? Shape{m, k} : Shape{k, m}, gen);
        const auto c = mm(a, b, ta, tb);
        REQUIRE(c.shape() == Shape{n, m});
        const double worst = worst_error_in_bounds(a.data(), b.data(), c.data(), n, k, m, ta, tb);
        CAPTURE(n);
        CAPTURE(k);
        CAPTURE(m);
        CAPTURE(ta);
        CAPTURE(tb);
        CHECK(worst <= 1.0);
      }
}
}  // namespace

TEST_SUITE("ops.linalg") {
  TEST_CASE("ops.linalg: op table, matmul and mm at order 3") {
    const std::vector<OpRow> rows = {
        {"mm", {{3, 4}, {4, 5}}, [](const V& a) { return mm(a[0], a[1]); }, 3},
        {"mm transpose_a", {{4, 3}, {4, 5}}, [](const V& a) { return mm(a[0], a[1], true, false); }, 3},
        {"mm transpose_b", {{3, 4}, {5, 4}}, [](const V& a) { return mm(a[0], a[1], false, true); }, 3},
        {"mm both transposed", {{4, 3}, {5, 4}}, [](const V& a) { return mm(a[0], a[1], true, true); }, 3},
        {"matmul 2-D", {{3, 4}, {4, 2}}, [](const V& a) { return matmul(a[0], a[1]); }, 3},
        {"matmul [2,3,4]@[4,5] (folded)", {{2, 3, 4}, {4, 5}}, [](const V& a) { return matmul(a[0], a[1]); }, 3},
        {"matmul [2,1,3,4]@[3,4,2] (broadcast batch)", {{2, 1, 3, 4}, {3, 4, 2}},
         [](const V& a) { return matmul(a[0], a[1]); }, 3},
        {"matmul [3,4]@[2,4,5]", {{3, 4}, {2, 4, 5}}, [](const V& a) { return matmul(a[0], a[1]); }},
        {"matmul vector.vector", {{5}, {5}}, [](const V& a) { return matmul(a[0], a[1]); }},
        {"matmul matrix.vector", {{3, 4}, {4}}, [](const V& a) { return matmul(a[0], a[1]); }},
        {"matmul vector.batched", {{4}, {2, 4, 3}}, [](const V& a) { return matmul(a[0], a[1]); }},
        {"matmul batched.vector", {{2, 3, 4}, {4}}, [](const V& a) { return matmul(a[0], a[1]); }},
        {"bmm both transposed, broadcast", {{2, 1, 4, 3}, {3, 5, 4}},
         [](const V& a) { return bmm(a[0], a[1], true, true); }},
        {"bmm transpose_a, unbatched b", {{2, 4, 3}, {4, 5}}, [](const V& a) { return bmm(a[0], a[1], true, false); }},
        {"bmm transpose_b, unbatched a", {{3, 4}, {2, 5, 4}}, [](const V& a) { return bmm(a[0], a[1], false, true); }},
        {"dot", {{6}, {6}}, [](const V& a) { return dot(a[0], a[1]); }},
        {"outer", {{3}, {4}}, [](const V& a) { return outer(a[0], a[1]); }},
        {"linear with bias", {{3, 4}, {5, 4}, {5}}, [](const V& a) { return linear(a[0], a[1], a[2]); }},
        {"linear 3-D input, no bias", {{2, 3, 4}, {2, 4}}, [](const V& a) { return linear(a[0], a[1]); }},
        {"linear vector input", {{4}, {3, 4}, {3}}, [](const V& a) { return linear(a[0], a[1], a[2]); }},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.mm: all transpose flags match Eigen, blocked and split across threads by rows or columns") {
    Generator gen(3);
    const int saved = num_threads();
    // {n, k, m}: tall, wide, and a vector-like and a tiny product that take Eigen's direct paths;
    // then a narrow one (width 16) big enough for the direct kernel to split it across threads.
    const std::int64_t sizes[][3] = {{131, 517, 67}, {67, 517, 131}, {1, 300, 70}, {3, 4, 5}, {517, 300, 16}};
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (const auto& size : sizes) {
        const std::int64_t n = size[0], k = size[1], m = size[2];
        for (bool ta : {false, true}) {
          for (bool tb : {false, true}) {
            CAPTURE(threads);
            CAPTURE(n);
            CAPTURE(ta);
            CAPTURE(tb);
            auto a = randn<float>(ta ? Shape{k, n} : Shape{n, k}, gen);
            auto b = randn<float>(tb ? Shape{m, k} : Shape{k, m}, gen);
            const auto c = mm(a, b, ta, tb);
            REQUIRE(c.shape() == Shape{n, m});
            CHECK(close(block(c, 0, n, m), reference_mm(a, b, ta, tb), 1e-4));
          }
        }
      }
    }
    set_num_threads(saved);
  }

  // gemm() hands every product to OpenBLAS (with METAGRAD_WITH_OPENBLAS) unless it is "small":
  // n == 1, m == 1 or n + m + k < 20, which Eigen's GEMV and coefficient-wise kernels take. The op
  // table's shapes are all small. Here each entry, in float and in double, is held to its own
  // rounding bound, and n, k and m all differ, so a transpose flag or leading dimension passed
  // wrongly reads the wrong elements and fails by orders of magnitude.
  TEST_CASE_TEMPLATE("ops.mm: BLAS and Eigen paths, every transpose flag, within k·eps of a long double product", T,
                     float, double) {
    Generator gen(13);
    SUBCASE("large and odd: the BLAS path") { check_mm_in_bounds<T>({{257, 300, 263}, {37, 91, 53}, {2, 45, 3}}, gen); }
    SUBCASE("just below the BLAS threshold: Eigen") {
      // n + m + k = 19, and matrix-vector products (n == 1, m == 1) of any depth.
      check_mm_in_bounds<T>({{6, 8, 5}, {1, 300, 70}, {70, 300, 1}}, gen);
    }
    SUBCASE("narrow C: the direct kernel (tiles, leftover rows and packets)") {
      // {n, k, m}: attention's per-head weights·v (width 16, depth 256), odd rows, width 32 (two
      // packets of floats, four of doubles), 8 and 24 wide (whole packets only for double), and
      // a narrow-depth product that stays with BLAS.
      check_mm_in_bounds<T>({{256, 256, 16}, {45, 300, 32}, {19, 40, 8}, {61, 17, 24}, {256, 16, 256}}, gen);
    }
    SUBCASE("bmm: one GEMM per batch entry, broadcast, and folded into one GEMM") {
      const std::int64_t n = 41, k = 67, m = 29;
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          // a [1, ...] broadcast over b's batch of 3.
          const auto a = randn<T>(ta ? Shape{1, k, n} : Shape{1, n, k}, gen);
          const auto b = randn<T>(tb ? Shape{3, m, k} : Shape{3, k, m}, gen);
          const auto c = bmm(a, b, ta, tb);
          REQUIRE(c.shape() == Shape{3, n, m});
          CAPTURE(ta);
          CAPTURE(tb);
          for (std::int64_t i = 0; i < 3; ++i)
            CHECK(worst_error_in_bounds(a.data(), b.data() + i * k * m, c.data() + i * n * m, n, k, m, ta, tb) <= 1.0);
        }
      // [2, n, k] @ [k, m] (not transposed) is one [2n, k] @ [k, m] GEMM.
      const auto a = randn<T>(Shape{2, n, k}, gen), b = randn<T>(Shape{k, m}, gen);
      const auto c = bmm(a, b, false, false);
      REQUIRE(c.shape() == Shape{2, n, m});
      CHECK(worst_error_in_bounds(a.data(), b.data(), c.data(), 2 * n, k, m, false, false) <= 1.0);
    }
  }

  TEST_CASE("ops.mm: small hand-computed product") {
    auto a = tensor<double>({{1, 2}, {3, 4}, {5, 6}});
    auto b = tensor<double>({{1, 0, -1}, {2, 1, 0}});
    CHECK(allclose(mm(a, b), tensor<double>({{5, 2, -1}, {11, 4, -3}, {17, 6, -5}})));
    CHECK(allclose(mm(a, a, true, false), tensor<double>({{35, 44}, {44, 56}})));
    CHECK(allclose(dot(tensor<double>({1, 2, 3}), tensor<double>({4, 5, 6})), scalar_tensor<double>(32)));
    CHECK(allclose(outer(tensor<double>({1, 2}), tensor<double>({3, 4, 5})),
                   tensor<double>({{3, 4, 5}, {6, 8, 10}})));
  }

  TEST_CASE("ops.matmul: batched products with broadcasting match per-matrix Eigen products") {
    Generator gen(5);
    // [2,1,3,4] @ [5,4,6] -> [2,5,3,6]: a is broadcast over b's batch and the other way round.
    auto a = randn<float>(Shape{2, 1, 3, 4}, gen), b = randn<float>(Shape{5, 4, 6}, gen);
    const auto c = matmul(a, b);
    REQUIRE(c.shape() == Shape{2, 5, 3, 6});
    for (std::int64_t i = 0; i < 2; ++i)
      for (std::int64_t j = 0; j < 5; ++j)
        CHECK(close(block(c, (i * 5 + j) * 18, 3, 6), block(a, i * 12, 3, 4) * block(b, j * 24, 4, 6), 1e-5));

    // Many small products: split across threads by whole products.
    auto x = randn<float>(Shape{256, 16, 16}, gen), y = randn<float>(Shape{256, 16, 16}, gen);
    const auto z = bmm(x, y, true, false);
    bool all = true;
    for (std::int64_t i = 0; i < 256; ++i)
      all = all && close(block(z, i * 256, 16, 16), block(x, i * 256, 16, 16).transpose() * block(y, i * 256, 16, 16), 1e-5);
    CHECK(all);

    // [2,3,4] @ [4,5] folds into one GEMM; the values are those of the per-matrix products.
    auto p = randn<float>(Shape{2, 3, 4}, gen), q = randn<float>(Shape{4, 5}, gen);
    const auto r = matmul(p, q);
    REQUIRE(r.shape() == Shape{2, 3, 5});
    for (std::int64_t i = 0; i < 2; ++i) CHECK(close(block(r, i * 15, 3, 5), block(p, i * 12, 3, 4) * block(q, 0, 4, 5), 1e-5));
  }

  TEST_CASE("ops.matmul: vector shapes follow PyTorch") {
    Generator gen(9);
    CHECK(matmul(randn<double>(Shape{4}, gen), randn<double>(Shape{4}, gen)).shape() == Shape{});
    CHECK(matmul(randn<double>(Shape{3, 4}, gen), randn<double>(Shape{4}, gen)).shape() == Shape{3});
    CHECK(matmul(randn<double>(Shape{4}, gen), randn<double>(Shape{4, 3}, gen)).shape() == Shape{3});
    CHECK(matmul(randn<double>(Shape{4}, gen), randn<double>(Shape{2, 4, 3}, gen)).shape() == Shape{2, 3});
    CHECK(matmul(randn<double>(Shape{2, 3, 4}, gen), randn<double>(Shape{4}, gen)).shape() == Shape{2, 3});
    auto m = tensor<double>({{1, 2}, {3, 4}});
    CHECK(allclose(matmul(m, tensor<double>({1, -1})), tensor<double>({-1, -1})));
    CHECK(allclose(matmul(tensor<double>({1, -1}), m), tensor<double>({-2, -2})));
  }

  TEST_CASE("ops.linear: x Wᵀ + b with PyTorch's weight layout") {
    auto x = tensor<double>({{1, 2, 3}});
    auto w = tensor<double>({{1, 0, 0}, {0, 1, 1}});  // [out=2, in=3]
    CHECK(allclose(linear(x, w, tensor<double>({10, 20})), tensor<double>({{11, 25}})));
    CHECK(linear(ones<double>(Shape{4, 2, 3}), w).shape() == Shape{4, 2, 2});
  }

  TEST_CASE("ops.mm: gradients are again mm, at every order (no transpose is materialised)") {
    Generator gen(11);
    auto a = randn<double>(Shape{3, 4}, gen).requires_grad_(), b = randn<double>(Shape{4, 5}, gen).requires_grad_();
    auto g1 = grad(sum(mm(a, b)), std::vector{a, b}, {.create_graph = true});
    REQUIRE(g1[0].grad_fn());
    CHECK(std::string(g1[0].grad_fn()->name()) == "mm");
    CHECK(std::string(g1[1].grad_fn()->name()) == "mm");
    auto g2 = grad(sum(mul(g1[0], g1[0])), std::vector{b}, {.create_graph = true});
    CHECK(std::string(g2[0].grad_fn()->name()) == "mm");
  }

  TEST_CASE("ops.linalg: errors name the op and both shapes") {
    auto a = zeros<float>(Shape{2, 3}), b = zeros<float>(Shape{4, 5});
    METAGRAD_CHECK_ERROR(mm(a, b), "mm", "inner dims differ", "[2, 3]", "[4, 5]");
    METAGRAD_CHECK_ERROR(mm(a, b, true, false), "mm", "[2, 3] (transposed)", "[4, 5]", "2 vs 4");
    METAGRAD_CHECK_ERROR(mm(zeros<float>(Shape{3}), b), "mm", "2-D", "[3]", "[4, 5]");
    METAGRAD_CHECK_ERROR(matmul(zeros<float>(Shape{2, 3, 4}), zeros<float>(Shape{3, 5, 6})), "matmul",
                         "inner dims differ", "[2, 3, 4]", "[3, 5, 6]");
    METAGRAD_CHECK_ERROR(matmul(zeros<float>(Shape{2, 3, 4}), zeros<float>(Shape{3, 4, 5})), "matmul", "batch",
                         "[2, 3, 4]", "[3, 4, 5]");
    METAGRAD_CHECK_ERROR(bmm(zeros<float>(Shape{2, 3, 4}), zeros<float>(Shape{2, 5, 3}), true, false), "bmm",
                         "[2, 3, 4] (transposed)", "[2, 5, 3]", "3 vs 5");
    METAGRAD_CHECK_ERROR(dot(zeros<float>(Shape{3}), zeros<float>(Shape{4})), "dot", "[3]", "[4]");
    METAGRAD_CHECK_ERROR(linear(a, b), "linear", "[2, 3]", "[4, 5]");
    METAGRAD_CHECK_ERROR(linear(a, zeros<float>(Shape{4, 3}), zeros<float>(Shape{5})), "linear", "bias", "[5]",
                         "[4, 3]");
    METAGRAD_CHECK_ERROR(linear(a, zeros<float>(Shape{3})), "linear", "2-D", "[3]");
    METAGRAD_CHECK_ERROR(dot(a, a), "dot", "[2, 3]");
    METAGRAD_CHECK_ERROR(outer(a, zeros<float>(Shape{3})), "outer", "[2, 3]", "[3]");
    METAGRAD_CHECK_ERROR(matmul(scalar_tensor<float>(1), zeros<float>(Shape{3})), "matmul", "rank >= 1", "[]", "[3]");
    METAGRAD_CHECK_ERROR(matmul(zeros<float>(Shape{3}), b), "matmul", "[3]", "[4, 5]", "3 vs 4");
    METAGRAD_CHECK_ERROR(matmul(a, zeros<float>(Shape{2})), "matmul", "[2, 3]", "[2]");
  }
}
