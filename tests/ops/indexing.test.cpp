// SPDX-License-Identifier: MIT
#include <algorithm>
#include <numeric>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/indexing.hpp"
#include "metagrad/ops/reduction.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::OpRow;
using metagrad::testing::same;
using V = std::vector<Tensor<double>>;
using I64 = std::int64_t;

namespace {

IndexTensor ix(std::initializer_list<I64> v) { return tensor<I64>(v); }
IndexTensor ix(std::initializer_list<std::initializer_list<I64>> v) { return tensor<I64>(v); }

/// Small integers as doubles: sums of them are exact, so kernels and references agree bit for bit.
Tensor<double> small_ints(const Shape& s, std::uint64_t seed) {
  Generator gen(seed);
  auto r = randint(-50, 50, s, gen);
  auto t = Tensor<double>::empty(s);
  std::transform(r.data(), r.data() + r.numel(), t.fresh_data(), [](I64 v) { return static_cast<double>(v); });
  return t;
}

}  // namespace

TEST_SUITE("ops.indexing") {
  TEST_CASE("ops.indexing: op table, orders 1-2 (3 for some)") {
    const auto cols = ix({3, 0, 3, 1});
    const auto rows = ix({5, 0, 5, 2, 2});
    const auto g35 = ix({{0, 4}, {2, 2}, {1, 3}});
    const auto rep35 = ix({{1, 1}, {0, 4}, {3, 3}});
    const auto dim0 = ix({{3, 0, 3}, {1, 3, 0}});
    const auto small = ix({{2, 0}, {2, 2}});
    const auto deep = tensor<I64>({3, 1, 0, 1, 1, 2});
    const std::vector<OpRow> table = {
        {"index_select {4,5} dim 1, repeated", {{4, 5}}, [cols](const V& a) { return index_select(a[0], 1, cols); }},
        {"index_select dim 0 (embedding) of a square, order 3", {{6, 3}},
         [rows](const V& a) { return index_select(a[0] * a[0], 0, rows); }, 3},
        {"index_add {6,5} dim 0, repeated", {{6, 5}, {5, 5}},
         [rows](const V& a) { return index_add(a[0], 0, rows, a[1] * a[1]); }},
        {"index_add dim 1", {{2, 4}, {2, 4}}, [cols](const V& a) { return index_add(a[0] * a[1], 1, cols, a[1]); }},
        {"index_select_backward as a function of g, order 3", {{4, 4}},
         [cols](const V& a) { return index_select_backward(a[0] * a[0], Shape{4, 5}, 1, cols); }, 3},
        {"gather {3,5} dim 1 with idx {3,2}", {{3, 5}}, [g35](const V& a) { return gather(a[0], 1, g35); }},
        {"gather dim 0, index smaller than the input, order 3", {{4, 3}},
         [small](const V& a) { return gather(a[0] * a[0], 0, small); }, 3},
        {"gather 3-D along dim 1", {{2, 4, 3}},
         [deep](const V& a) { return gather(a[0], 1, reshape(deep, {2, 3, 1})); }},
        {"scatter_add {3,5} dim 1, repeated", {{3, 5}, {3, 2}},
         [rep35](const V& a) { return scatter_add(a[0], 1, rep35, a[1] * a[1]); }},
        {"scatter_add dim 0, repeated", {{4, 3}, {2, 3}},
         [dim0](const V& a) { return scatter_add(a[0] * a[0], 0, dim0, a[1]); }},
        {"gather_backward as a function of g, order 3", {{3, 2}},
         [rep35](const V& a) { return gather_backward(a[0] * a[0], Shape{3, 5}, 1, rep35); }, 3},
    };
    metagrad::testing::check_op_table(table);
  }

  TEST_CASE("ops.index_select: hand values, float and int") {
    auto m = tensor<double>({{1, 2, 3}, {4, 5, 6}});
    CHECK(same(index_select(m, 1, ix({2, 0, 2})), tensor<double>({{3, 1, 3}, {6, 4, 6}})));
    CHECK(same(index_select(m, 0, ix({1, 1, 0})), tensor<double>({{4, 5, 6}, {4, 5, 6}, {1, 2, 3}})));
    CHECK(index_select(m, -1, IndexTensor::empty(Shape{0})).shape() == Shape{2, 0});
    CHECK(same(index_select(ix({7, 8, 9}), 0, ix({2, 2, 0})), ix({9, 9, 7})));
  }

  TEST_CASE("ops.index_add: repeated indices sum") {
    auto base = tensor<double>({{1, 1}, {1, 1}, {1, 1}});
    auto src = tensor<double>({{1, 2}, {3, 4}, {5, 6}});
    CHECK(same(index_add(base, 0, ix({0, 2, 0}), src), tensor<double>({{7, 9}, {1, 1}, {4, 5}})));
    CHECK(same(base, tensor<double>({{1, 1}, {1, 1}, {1, 1}})));  // out of place
    CHECK(same(index_add(zeros<double>(Shape{2, 3}), 1, ix({2, 2}), tensor<double>({{1, 2}, {3, 4}})),
               tensor<double>({{0, 0, 3}, {0, 0, 7}})));
  }

  TEST_CASE("ops.index_select: the embedding gradient sums the rows of repeated ids") {
    auto table = tensor<double>({{1, 2}, {3, 4}, {5, 6}}).requires_grad_();
    auto w = tensor<double>({{1, 10}, {2, 20}, {3, 30}, {4, 40}});
    auto g = grad(sum(index_select(table, 0, ix({2, 0, 2, 2})) * w), table);
    CHECK(same(g, tensor<double>({{2, 20}, {0, 0}, {8, 80}})));
  }

  TEST_CASE("ops.gather / scatter_add: the torch documentation examples") {
    auto t2 = tensor<double>({{1, 2}, {3, 4}});
    CHECK(same(gather(t2, 1, ix({{0, 0}, {1, 0}})), tensor<double>({{1, 1}, {4, 3}})));
    CHECK(same(gather(ix({{1, 2}, {3, 4}}), 0, ix({{1, 0}})), ix({{3, 2}})));
    auto out = scatter_add(zeros<double>(Shape{3, 5}), 0, ix({{0, 1, 2, 0, 0}, {0, 1, 2, 2, 2}}), ones<double>(Shape{2, 5}));
    CHECK(same(out, tensor<double>({{2, 0, 0, 1, 1}, {0, 2, 0, 0, 0}, {0, 0, 2, 1, 1}})));
  }

  TEST_CASE("ops.gather: the gradient scatters back, repeated picks summed, to second order") {
    auto x = tensor<double>({{1, 2, 3}, {4, 5, 6}}).requires_grad_();
    auto w = tensor<double>({{1, 2}, {3, 4}});
    const auto picks = ix({{0, 0}, {2, 1}});
    auto y = gather(x, 1, picks);  // {{1, 1}, {6, 5}}
    auto g = grad(sum(y * y * w), x, GradOptions<double>{.create_graph = true});
    // d/dx of sum(w * x_picked^2) = 2 w x at each pick, summed where a pick repeats.
    CHECK(same(g.detach(), tensor<double>({{6, 0, 0}, {0, 40, 36}})));
    auto h = grad(sum(g), x);
    CHECK(same(h, tensor<double>({{6, 0, 0}, {0, 8, 6}})));
  }

  TEST_CASE("ops.one_hot: values for 1-D and 2-D labels") {
    CHECK(same(one_hot<float>(ix({2, 0, 1}), 3), tensor<float>({{0, 0, 1}, {1, 0, 0}, {0, 1, 0}})));
    auto h = one_hot<double>(ix({{1, 0}, {3, 3}}), 4);
    REQUIRE(h.shape() == Shape{2, 2, 4});
    CHECK(h(1, 1, 3) == 1.0);
    CHECK(h(0, 0, 1) == 1.0);
    CHECK(sum(h).item() == 4.0);
    CHECK_FALSE(h.requires_grad());
  }

  TEST_CASE("ops.indexing: large inputs match element-by-element references across threads") {
    const auto x = small_ints(Shape{700, 257}, 1);
    Generator gen(2);
    const auto ids0 = randint(0, 700, Shape{900}, gen), ids1 = randint(0, 257, Shape{300}, gen);

    // index_select along both dims.
    const auto s0 = index_select(x, 0, ids0), s1 = index_select(x, 1, ids1);
    bool ok0 = true, ok1 = true;
    for (I64 j = 0; j < 900; ++j)
      for (I64 c = 0; c < 257; ++c) ok0 = ok0 && s0(j, c) == x(ids0.data()[j], c);
    for (I64 r = 0; r < 700; ++r)
      for (I64 j = 0; j < 300; ++j) ok1 = ok1 && s1(r, j) == x(r, ids1.data()[j]);
    CHECK(ok0);
    CHECK(ok1);

    // index_add with many repeats: dim 0 splits columns between threads, dim 1 splits rows.
    auto ref0 = x.to_vector();
    const auto src0 = small_ints(Shape{900, 257}, 3);
    for (I64 j = 0; j < 900; ++j)
      for (I64 c = 0; c < 257; ++c) ref0[static_cast<std::size_t>(ids0.data()[j] * 257 + c)] += src0(j, c);
    CHECK(same(index_add(x, 0, ids0, src0), from_vector(ref0, x.shape())));
    auto ref1 = x.to_vector();
    const auto src1 = small_ints(Shape{700, 300}, 4);
    for (I64 r = 0; r < 700; ++r)
      for (I64 j = 0; j < 300; ++j) ref1[static_cast<std::size_t>(r * 257 + ids1.data()[j])] += src1(r, j);
    CHECK(same(index_add(x, 1, ids1, src1), from_vector(ref1, x.shape())));

    // gather / scatter_add along both dims with an index smaller than the input in the other dim.
    for (int dim = 0; dim < 2; ++dim) {
      CAPTURE(dim);
      const Shape is = dim == 0 ? Shape{650, 200} : Shape{690, 250};
      const auto idx = randint(0, x.shape()[dim], is, gen);
      const auto src = small_ints(is, 5 + static_cast<std::uint64_t>(dim));
      const auto g = gather(x, dim, idx);
      auto ref = x.to_vector();
      bool ok = true;
      for (I64 r = 0; r < is[0]; ++r)
        for (I64 c = 0; c < is[1]; ++c) {
          const I64 k = idx(r, c);
          ok = ok && g(r, c) == (dim == 0 ? x(k, c) : x(r, k));
          ref[static_cast<std::size_t>(dim == 0 ? k * 257 + c : r * 257 + k)] += src(r, c);
        }
      CHECK(ok);
      CHECK(same(scatter_add(x, dim, idx, src), from_vector(ref, x.shape())));
    }
  }

  TEST_CASE("ops.indexing: bad input names the op, the index and the shapes") {
    auto x = tensor<double>({{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}, {11, 12, 13, 14, 15}});  // [3, 5]
    METAGRAD_CHECK_ERROR(gather(x, 1, ix({{0, 1}, {5, 0}, {1, 1}})), "gather", "index 5", "position [1, 0]", "[3, 5]",
                         "[3, 2]");
    METAGRAD_CHECK_ERROR(gather(x, 1, reshape(ix({0, -1, 1}), {3, 1})), "gather", "index -1", "[3, 5]", "[3, 1]");
    METAGRAD_CHECK_ERROR(gather(x, 1, ix({0, 1})), "gather", "rank", "[2]", "[3, 5]");
    METAGRAD_CHECK_ERROR(gather(x, 1, zeros<I64>(Shape{4, 1})), "gather", "dim 0", "[4, 1]", "[3, 5]");
    METAGRAD_CHECK_ERROR(gather(x, 2, zeros<I64>(Shape{1, 1})), "gather", "dim 2", "[3, 5]");
    METAGRAD_CHECK_ERROR(index_select(x, 0, ix({0, 3})), "index_select", "index 3", "position [1]", "[3, 5]", "[2]");
    METAGRAD_CHECK_ERROR(index_select(x, 1, ix({-2})), "index_select", "index -2", "[3, 5]");
    METAGRAD_CHECK_ERROR(index_select(x, 0, ix({{0, 1}})), "index_select", "1-D", "[1, 2]", "[3, 5]");
    METAGRAD_CHECK_ERROR(index_add(x, 0, ix({7}), ones<double>(Shape{1, 5})), "index_add", "index 7", "[3, 5]");
    METAGRAD_CHECK_ERROR(index_add(x, 0, ix({0}), ones<double>(Shape{2, 5})), "index_add", "[2, 5]", "[1, 5]", "[3, 5]");
    METAGRAD_CHECK_ERROR(scatter_add(x, 0, full<I64>(Shape{1, 1}, 3), ones<double>(Shape{1, 1})), "scatter_add", "index 3", "[3, 5]");
    METAGRAD_CHECK_ERROR(scatter_add(x, 0, ix({{0, 1}}), ones<double>(Shape{1, 3})), "scatter_add", "[1, 3]", "[1, 2]");
    METAGRAD_CHECK_ERROR(gather_backward(ones<double>(Shape{1, 1}), Shape{3, 5}, 1, full<I64>(Shape{1, 1}, 9)), "gather_backward",
                         "index 9", "[3, 5]");
    METAGRAD_CHECK_ERROR(one_hot<float>(ix({0, 3}), 3), "one_hot", "label 3", "position [1]", "3 classes", "[2]");
    METAGRAD_CHECK_ERROR(one_hot<float>(ix({0}), 0), "one_hot", "positive", "[1]");
  }
}
