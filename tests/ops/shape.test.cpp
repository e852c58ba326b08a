// SPDX-License-Identifier: MIT
#include <algorithm>
#include <limits>
#include <numeric>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/shape.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using metagrad::testing::OpRow;
using metagrad::testing::same;
using V = std::vector<Tensor<double>>;
using I64 = std::int64_t;

namespace {

/// 0, 1, 2, ... in `shape`: after a copy kernel every element names where it came from (exact in
/// float too, below 2^24 elements).
template <Element T = I64>
Tensor<T> iota(const Shape& s) {
  auto t = Tensor<T>::empty(s);
  std::iota(t.fresh_data(), t.fresh_data() + t.numel(), T(0));
  return t;
}

/// The flat index of a multi-index (given last dim first, as unravelled).
I64 flat(const Shape& s, const std::vector<I64>& idx) {
  I64 f = 0;
  for (int d = 0; d < s.rank(); ++d) f = f * s[d] + idx[static_cast<std::size_t>(d)];
  return f;
}

std::vector<I64> unravel(const Shape& s, I64 f) {
  std::vector<I64> idx(static_cast<std::size_t>(s.rank()));
  for (int d = s.rank() - 1; d >= 0; --d) {
    idx[static_cast<std::size_t>(d)] = f % s[d];
    f /= s[d];
  }
  return idx;
}

/// The obvious element-by-element permute, for reference.
template <Element T>
Tensor<T> naive_permute(const Tensor<T>& x, const std::vector<I64>& perm) {
  Shape out_shape;
  for (auto p : perm) out_shape.push_back(x.shape()[static_cast<int>(p)]);
  auto out = Tensor<T>::empty(out_shape);
  for (I64 f = 0; f < out.numel(); ++f) {
    const auto o = unravel(out_shape, f);
    std::vector<I64> i(perm.size());
    for (std::size_t k = 0; k < perm.size(); ++k) i[static_cast<std::size_t>(perm[k])] = o[k];
    out.fresh_data()[f] = x.data()[flat(x.shape(), i)];
  }
  return out;
}

/// The obvious element-by-element slice along `dim`, for reference.
IndexTensor naive_slice(const IndexTensor& x, int dim, I64 start, I64 step, I64 len) {
  Shape s = x.shape();
  s[dim] = len;
  auto out = IndexTensor::empty(s);
  for (I64 f = 0; f < out.numel(); ++f) {
    auto i = unravel(s, f);
    i[static_cast<std::size_t>(dim)] = start + i[static_cast<std::size_t>(dim)] * step;
    out.fresh_data()[f] = x.data()[flat(x.shape(), i)];
  }
  return out;
}

}  // namespace

TEST_SUITE("ops.shape") {
  TEST_CASE("ops.shape: op table, orders 1-2 (3 for some)") {
    const std::vector<OpRow> rows = {
        {"permute {3,4,5} by {2,0,1}", {{3, 4, 5}}, [](const V& a) { return permute(a[0], {2, 0, 1}); }},
        {"permute of a square, order 3", {{2, 3, 4}}, [](const V& a) { return permute(a[0] * a[0], {1, 2, 0}); }, 3},
        {"permute keeping the last dim", {{3, 2, 4}}, [](const V& a) { return permute(a[0], {1, 0, 2}); }},
        {"transpose dims 0 and 2", {{2, 3, 4}}, [](const V& a) { return transpose(a[0], 0, -1); }},
        {"t", {{3, 5}}, [](const V& a) { return t(a[0]); }},
        {"slice dim 0, negative start, step 2", {{5, 4}}, [](const V& a) { return slice(a[0], 0, -4, 5, 2); }},
        {"slice dim 1, negative end, order 3", {{3, 7}}, [](const V& a) { return slice(a[0] * a[0], 1, 1, -1); }, 3},
        {"slice_backward as a function of g, order 3", {{3, 2}},
         [](const V& a) { return slice_backward(a[0] * a[0], Shape{3, 7}, 1, 1, 3); }, 3},
        {"narrow, negative start", {{4, 5}}, [](const V& a) { return narrow(a[0], 1, -3, 2); }},
        {"select, negative index", {{3, 4, 2}}, [](const V& a) { return select(a[0], 1, -1); }},
        {"concat {2,3} and {4,3} along dim 0", {{2, 3}, {4, 3}}, [](const V& a) { return concat<double>({a[0], a[1]}, 0); }},
        {"concat of three along dim 1, one used twice", {{2, 1}, {2, 3}},
         [](const V& a) { return concat<double>({a[0], a[1] * a[1], a[0]}, 1); }},
        {"stack along dim 1", {{2, 3}, {2, 3}, {2, 3}}, [](const V& a) { return stack<double>({a[0], a[1], a[2]}, 1); }},
        {"stack along dim -1 of products", {{3}, {3}}, [](const V& a) { return stack<double>({a[0] * a[1], a[1]}, -1); }},
        {"split by sizes", {{5, 3}},
         [](const V& a) {
           auto p = split(a[0], {2, 3}, 0);
           return concat<double>({p[1], p[0] * p[0]}, 0);
         }},
        {"chunk", {{4, 6}},
         [](const V& a) {
           auto p = chunk(a[0], 3, 1);
           return p[0] * p[1] + p[2];
         }},
        {"unbind", {{3, 4}},
         [](const V& a) {
           auto u = unbind(a[0], 0);
           return u[0] * u[2] + u[1];
         }},
        {"clone", {{2, 3}}, [](const V& a) { return clone(a[0]) * a[0]; }},
        {"flip dims 0 and 2", {{3, 4, 5}}, [](const V& a) { return flip(a[0], {0, -1}); }},
        {"repeat with a new leading dim", {{2, 3}}, [](const V& a) { return repeat(a[0], {2, 1, 3}); }},
        {"expand", {{3, 1}}, [](const V& a) { return expand(a[0] * a[0], {2, -1, 4}); }},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.permute: matches an element-by-element reference for every order of {3,4,5}") {
    const auto x = iota(Shape{3, 4, 5});
    std::vector<I64> perm{0, 1, 2};
    do {
      CAPTURE(perm[0] * 100 + perm[1] * 10 + perm[2]);
      CHECK(same(permute(x, perm), naive_permute(x, perm)));
    } while (std::next_permutation(perm.begin(), perm.end()));
  }

  TEST_CASE_TEMPLATE("ops.permute: large, with extent-1 dims and merged dims, across threads and tiles", T, I64, float,
                     double) {
    // Floating types take the SIMD block path, index tensors the scalar one. {67, 129, 33}: odd
    // extents leave partial SIMD blocks and tiles; 285k elements run on several threads.
    const auto big = iota<T>(Shape{67, 129, 33});
    std::vector<I64> perm{0, 1, 2};
    do {
      CHECK(same(permute(big, perm), naive_permute(big, perm)));
    } while (std::next_permutation(perm.begin(), perm.end()));
    const auto ones_in = iota<T>(Shape{2, 1, 3, 4, 1});
    for (const auto& p : std::vector<std::vector<I64>>{{4, 3, 2, 1, 0}, {1, 0, 3, 2, 4}, {2, 3, 0, 4, 1}})
      CHECK(same(permute(ones_in, p), naive_permute(ones_in, p)));
    // Dims 1 and 2 stay neighbours and merge: this is a 2-D transpose of a [5, 6*7] matrix.
    const auto merged = iota<T>(Shape{5, 6, 7});
    CHECK(same(permute(merged, {1, 2, 0}), naive_permute(merged, {1, 2, 0})));
    // Long and narrow both ways.
    const auto narrow_in = iota<T>(Shape{5001, 3});
    CHECK(same(t(narrow_in), naive_permute(narrow_in, {1, 0})));
    const auto wide = iota<T>(Shape{3, 5001});
    CHECK(same(t(wide), naive_permute(wide, {1, 0})));
    const auto square = iota<T>(Shape{1031, 517});
    CHECK(same(t(square), naive_permute(square, {1, 0})));
    // A power-of-two stride and a batch of transposes with full tiles.
    const auto pow2 = iota<T>(Shape{512, 256});
    CHECK(same(t(pow2), naive_permute(pow2, {1, 0})));
    const auto batched = iota<T>(Shape{3, 64, 48, 5});
    CHECK(same(permute(batched, {0, 2, 1, 3}), naive_permute(batched, {0, 2, 1, 3})));
    CHECK(same(permute(batched, {3, 1, 0, 2}), naive_permute(batched, {3, 1, 0, 2})));
  }

  TEST_CASE("ops.transpose: hand values, float and int") {
    auto m = tensor<float>({{1, 2, 3}, {4, 5, 6}});
    CHECK(same(t(m), tensor<float>({{1, 4}, {2, 5}, {3, 6}})));
    CHECK(same(transpose(m, 1, 0), t(m)));
    CHECK(transpose(m, 1, -1).is_same(m));  // swapping a dim with itself is the identity
    auto v = tensor<float>({1, 2, 3});
    CHECK(t(v).is_same(v));
    auto x = iota(Shape{2, 3, 2});
    // x[i][j][k] = 6i + 2j + k; transpose(0, 2)[k][j][i] = x[i][j][k].
    auto y = transpose(x, 0, 2);
    CHECK(y.shape() == Shape{2, 3, 2});
    CHECK(y(1, 2, 0) == 5);
    CHECK(y(0, 1, 1) == 8);
  }

  TEST_CASE("ops.slice: Python semantics by hand") {
    auto x = iota(Shape{10});
    CHECK(same(slice(x, 0, 2, -2, 3), tensor<I64>({2, 5})));
    CHECK(same(slice(x, 0, -3), tensor<I64>({7, 8, 9})));
    CHECK(same(slice(x, 0, -100, 100), x));   // clamped on both sides
    CHECK(slice(x, 0, 8, 2).numel() == 0);    // empty when end <= start
    CHECK(slice(x, 0, 12, 20).numel() == 0);  // past the end
    CHECK(same(slice(x, 0, 0, 10, 4), tensor<I64>({0, 4, 8})));
    auto m = tensor<double>({{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}});
    CHECK(same(slice(m, 1, 1, 3), tensor<double>({{2, 3}, {6, 7}, {10, 11}})));
    CHECK(same(slice(m, 0, 0, 3, 2), tensor<double>({{1, 2, 3, 4}, {9, 10, 11, 12}})));
    CHECK(same(slice(m, -1, 3, 0), Tensor<double>::empty(Shape{3, 0})));
    CHECK(same(narrow(m, 1, -2, 2), tensor<double>({{3, 4}, {7, 8}, {11, 12}})));
    CHECK(same(select(m, 0, -1), tensor<double>({9, 10, 11, 12})));
    CHECK(same(select(m, 1, 2), tensor<double>({3, 7, 11})));
  }

  TEST_CASE("ops.slice: large slices and their adjoint match a reference across threads") {
    const auto x = iota(Shape{600, 301});
    CHECK(same(slice(x, 1, 7, -5), naive_slice(x, 1, 7, 1, 301 - 12)));
    CHECK(same(slice(x, 1, 2, 301, 5), naive_slice(x, 1, 2, 5, 60)));
    CHECK(same(slice(x, 0, 1, 600, 3), naive_slice(x, 0, 1, 3, 200)));
    CHECK(same(slice(x, 0, 100, 500), naive_slice(x, 0, 100, 1, 400)));
    // slice_backward puts every element back where slice took it and zeros elsewhere.
    for (const auto& [dim, start, step, len] : std::vector<std::array<I64, 4>>{{1, 7, 1, 289}, {1, 2, 5, 60}, {0, 1, 3, 200}}) {
      const auto part = slice(x, dim, start, start + len * step, step);
      const auto back = slice_backward(part, x.shape(), dim, start, step);
      for (I64 f = 0; f < x.numel(); ++f) {
        const I64 along = unravel(x.shape(), f)[static_cast<std::size_t>(dim)];
        const bool taken = along >= start && (along - start) % step == 0 && (along - start) / step < len;
        if (back.data()[f] != (taken ? x.data()[f] : 0)) {
          FAIL("slice_backward misplaced element ", f, " for dim ", dim, " start ", start, " step ", step);
          break;
        }
      }
    }
  }

  TEST_CASE("ops.slice: gradient is the upstream gradient padded with zeros, to second order") {
    auto x = tensor<double>({1, 2, 3, 4, 5}).requires_grad_();
    auto y = slice(x, 0, 1, 5, 2);  // x[1], x[3]
    auto g = grad(sum(y * y * y), x, GradOptions<double>{.create_graph = true});
    CHECK(same(g.detach(), tensor<double>({0, 12, 0, 48, 0})));  // 3 x^2 at the picked places
    auto h = grad(sum(g), x);
    CHECK(same(h, tensor<double>({0, 12, 0, 24, 0})));  // 6 x
  }

  TEST_CASE("ops.concat: hand values, empty pieces, index tensors and gradients") {
    auto a = tensor<double>({{1, 2}, {3, 4}});
    auto b = tensor<double>({{5, 6}});
    CHECK(same(concat<double>({a, b}, 0), tensor<double>({{1, 2}, {3, 4}, {5, 6}})));
    CHECK(same(concat<double>({a, tensor<double>({{7}, {8}})}, 1), tensor<double>({{1, 2, 7}, {3, 4, 8}})));
    CHECK(same(concat<double>({Tensor<double>::empty(Shape{0, 2}), a, Tensor<double>::empty(Shape{0, 2})}, 0), a));
    CHECK(same(concat<I64>({tensor<I64>({1, 2}), tensor<I64>({3})}), tensor<I64>({1, 2, 3})));
    CHECK(concat<double>({a}).is_same(a));

    auto p = tensor<double>({1, 2}).requires_grad_();
    auto q = tensor<double>({3, 4, 5}).requires_grad_();
    auto w = tensor<double>({10, 20, 30, 40, 50});
    auto gs = grad(sum(concat<double>({p, q}) * w), std::vector{p, q});
    CHECK(same(gs[0], tensor<double>({10, 20})));
    CHECK(same(gs[1], tensor<double>({30, 40, 50})));
  }

  TEST_CASE("ops.concat: large, along each dim, matches a reference across threads") {
    const auto a = iota(Shape{300, 7, 41}), b = iota(Shape{300, 9, 41}), c = iota(Shape{300, 1, 41});
    const auto out = concat<I64>({a, b, c}, 1);
    REQUIRE(out.shape() == Shape{300, 17, 41});
    CHECK(same(slice(out, 1, 0, 7), a));
    CHECK(same(slice(out, 1, 7, 16), b));
    CHECK(same(slice(out, 1, 16, 17), c));
    const auto rows = concat<I64>({a, a}, 0);
    CHECK(same(slice(rows, 0, 300), a));
    const auto d = iota(Shape{300, 7, 5});
    const auto last = concat<I64>({a, d}, -1);
    CHECK(same(slice(last, 2, 0, 41), a));
    CHECK(same(slice(last, 2, 41), d));
  }

  TEST_CASE("ops.stack, split, chunk, unbind: hand values and the torch piece counts") {
    auto a = tensor<double>({1, 2, 3}), b = tensor<double>({4, 5, 6});
    CHECK(same(stack<double>({a, b}), tensor<double>({{1, 2, 3}, {4, 5, 6}})));
    CHECK(same(stack<double>({a, b}, 1), tensor<double>({{1, 4}, {2, 5}, {3, 6}})));
    CHECK(same(stack<double>({a, b}, -1), stack<double>({a, b}, 1)));

    auto sizes = [](const std::vector<IndexTensor>& ps) {
      std::vector<I64> n;
      for (const auto& p : ps) n.push_back(p.numel());
      return n;
    };
    CHECK(sizes(chunk(iota(Shape{5}), 3)) == std::vector<I64>{2, 2, 1});
    CHECK(sizes(chunk(iota(Shape{6}), 4)) == std::vector<I64>{2, 2, 2});  // torch.chunk gives 3 here
    CHECK(sizes(split(iota(Shape{7}), 3)) == std::vector<I64>{3, 3, 1});
    CHECK(sizes(split(iota(Shape{7}), {4, 0, 3})) == std::vector<I64>{4, 0, 3});
    auto parts = split(iota(Shape{2, 5}), {1, 4}, 1);
    CHECK(same(parts[1], tensor<I64>({{1, 2, 3, 4}, {6, 7, 8, 9}})));
    auto rows = unbind(tensor<double>({{1, 2}, {3, 4}, {5, 6}}), 1);
    REQUIRE(rows.size() == 2);
    CHECK(same(rows[1], tensor<double>({2, 4, 6})));
    CHECK(same(stack(rows, 1), tensor<double>({{1, 2}, {3, 4}, {5, 6}})));
  }

  TEST_CASE("ops.flip, repeat, expand, clone: hand values") {
    auto m = tensor<double>({{1, 2, 3}, {4, 5, 6}});
    CHECK(same(flip(m, {0}), tensor<double>({{4, 5, 6}, {1, 2, 3}})));
    CHECK(same(flip(m, {1}), tensor<double>({{3, 2, 1}, {6, 5, 4}})));
    CHECK(same(flip(m, {0, 1}), tensor<double>({{6, 5, 4}, {3, 2, 1}})));
    const auto big = iota(Shape{70, 33, 29});
    const auto fb = flip(big, {0, 2});
    CHECK(fb(0, 0, 0) == big(69, 0, 28));
    CHECK(fb(12, 31, 3) == big(57, 31, 25));
    CHECK(same(flip(fb, {2, 0}), big));

    CHECK(same(repeat(tensor<double>({1, 2}), {2, 2}), tensor<double>({{1, 2, 1, 2}, {1, 2, 1, 2}})));
    CHECK(same(repeat(tensor<I64>({{1}, {2}}), {1, 3}), tensor<I64>({{1, 1, 1}, {2, 2, 2}})));
    CHECK(repeat(m, {0, 1}).shape() == Shape{0, 3});
    CHECK(same(expand(tensor<double>({{1}, {2}}), {-1, 3}), tensor<double>({{1, 1, 1}, {2, 2, 2}})));

    auto c = clone(m);
    CHECK(same(c, m));
    CHECK(c.data() != m.data());
    // The repeat gradient sums the copies: each element appears 4 times.
    auto x = tensor<double>({1, 2}).requires_grad_();
    CHECK(same(grad(sum(repeat(x, {2, 2})), x), tensor<double>({4, 4})));
  }

  TEST_CASE("ops.shape: bad input names the op and the shapes") {
    auto m = tensor<double>({{1, 2, 3}, {4, 5, 6}});
    METAGRAD_CHECK_ERROR(permute(m, {0}), "permute", "1 dims", "[2, 3]");
    METAGRAD_CHECK_ERROR(permute(m, {1, 1}), "permute", "repeated", "[2, 3]");
    METAGRAD_CHECK_ERROR(permute(m, {0, 2}), "permute", "dim 2", "[2, 3]");
    METAGRAD_CHECK_ERROR(transpose(m, 0, 2), "transpose", "dim 2", "[2, 3]");
    METAGRAD_CHECK_ERROR(t(ones<double>(Shape{2, 3, 4})), "t", "rank <= 2", "[2, 3, 4]");
    METAGRAD_CHECK_ERROR(slice(m, 2, 0, 1), "slice", "dim 2", "[2, 3]");
    METAGRAD_CHECK_ERROR(slice(m, 1, 0, 3, 0), "slice", "step", "[2, 3]");
    METAGRAD_CHECK_ERROR(slice(scalar_tensor(1.0), 0, 0, 1), "slice", "rank >= 1", "[]");
    METAGRAD_CHECK_ERROR(narrow(m, 1, 2, 2), "narrow", "length 2", "[2, 3]");
    METAGRAD_CHECK_ERROR(narrow(m, 1, -4, 1), "narrow", "start -4", "[2, 3]");
    METAGRAD_CHECK_ERROR(select(m, 0, 2), "select", "index 2", "[2, 3]");
    METAGRAD_CHECK_ERROR(select(m, 1, -4), "select", "index -4", "[2, 3]");
    METAGRAD_CHECK_ERROR(concat<double>({m, ones<double>(Shape{4, 2})}, 0), "concat", "tensor 1", "[4, 2]", "[2, 3]");
    METAGRAD_CHECK_ERROR(concat<double>({m, ones<double>(Shape{2, 3, 1})}, 0), "concat", "[2, 3, 1]", "[2, 3]");
    METAGRAD_CHECK_ERROR(concat<double>({m, m}, 2), "concat", "dim 2", "[2, 3]");
    METAGRAD_CHECK_ERROR(concat<double>({}, 0), "concat", "at least one");
    METAGRAD_CHECK_ERROR(stack<double>({m, ones<double>(Shape{3, 2})}), "stack", "[3, 2]", "[2, 3]");
    METAGRAD_CHECK_ERROR(stack<double>({m, m}, 3), "stack", "dim 3", "[2, 3]");
    METAGRAD_CHECK_ERROR(split(m, {1, 1}, 1), "split", "add up to 2", "[2, 3]");
    METAGRAD_CHECK_ERROR(split(m, I64{0}, 1), "split", "positive", "[2, 3]");
    METAGRAD_CHECK_ERROR(chunk(m, 0, 1), "chunk", "positive", "[2, 3]");
    METAGRAD_CHECK_ERROR(flip(m, {1, -1}), "flip", "repeated", "[2, 3]");
    METAGRAD_CHECK_ERROR(repeat(m, {2}), "repeat", "[2, 3]");
    METAGRAD_CHECK_ERROR(expand(m, {-1, 3, 3}), "expand", "-1", "[2, 3]");
    METAGRAD_CHECK_ERROR(slice_backward(m, Shape{2, 2}, 1, 0, 1), "slice_backward", "[2, 3]", "[2, 2]");
    METAGRAD_CHECK_ERROR(slice_backward(m, Shape{2, 5}, 1, 1, 2), "slice_backward", "step 2", "[2, 5]");
    METAGRAD_CHECK_ERROR(slice_backward(m, Shape{2, 5}, 1, 0, 0), "slice_backward", "step 0", "[2, 5]");
    // Steps and lengths near the int64 limit are handled without overflow.
    const I64 huge = std::numeric_limits<I64>::max();
    CHECK(same(slice(m, 1, 1, huge, huge), tensor<double>({{2}, {5}})));
    METAGRAD_CHECK_ERROR(slice_backward(m, Shape{2, 9}, 1, 1, huge), "slice_backward", "length 3", "[2, 9]");
    METAGRAD_CHECK_ERROR(narrow(m, 1, 1, huge), "narrow", "exceeds", "[2, 3]");
  }
}
