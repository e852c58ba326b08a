// SPDX-License-Identifier: MIT
#include "metagrad/core/shape.hpp"
#include "test_util.hpp"

using namespace metagrad;

TEST_SUITE("core.shape") {
  TEST_CASE("core.shape: rank, extents, numel and row-major strides") {
    const Shape s{2, 3, 4};
    CHECK(s.rank() == 3);
    CHECK(s[1] == 3);
    CHECK(s.numel() == 24);
    const auto st = s.strides();
    CHECK(st[0] == 12);
    CHECK(st[1] == 4);
    CHECK(st[2] == 1);
    CHECK(s.vec() == std::vector<std::int64_t>{2, 3, 4});
    CHECK(Shape(std::vector<std::int64_t>{2, 3, 4}) == s);
    CHECK_FALSE(Shape{2, 3} == s);
    CHECK_FALSE((Shape{2, 3, 5} == s));
  }

  TEST_CASE("core.shape: a rank-0 shape has one element; a zero extent has none") {
    CHECK(Shape{}.rank() == 0);
    CHECK(Shape{}.numel() == 1);
    CHECK(Shape{}.str() == "[]");
    CHECK(Shape{3, 0, 2}.numel() == 0);
  }

  TEST_CASE("core.shape: prints as [2, 3]") {
    CHECK(Shape{2, 3}.str() == "[2, 3]");
    CHECK(Shape{7}.str() == "[7]");
    std::ostringstream os;
    os << Shape{1, 2, 3};
    CHECK(os.str() == "[1, 2, 3]");
  }

  TEST_CASE("core.shape: bad shapes are errors that say why") {
    METAGRAD_CHECK_ERROR((Shape{1, 1, 1, 1, 1, 1, 1, 1, 1}), "Shape", "rank 9", "maximum 8");
    METAGRAD_CHECK_ERROR((Shape{2, -1}), "Shape", "negative extent -1");
    Shape full{1, 1, 1, 1, 1, 1, 1, 1};
    METAGRAD_CHECK_ERROR(full.push_back(2), "Shape", "maximum 8");
  }

  TEST_CASE("core.shape: normalize_dim resolves negative dims and names the op") {
    CHECK(normalize_dim(-1, 3, "op") == 2);
    CHECK(normalize_dim(-3, 3, "op") == 0);
    CHECK(normalize_dim(2, 3, "op") == 2);
    CHECK(normalize_dim(0, 0, "op") == 0);  // a scalar's only "dim"
    CHECK(normalize_dim(-1, 0, "op") == 0);  // as in PyTorch
    METAGRAD_CHECK_ERROR(normalize_dim(1, 0, "softmax"), "softmax", "dim 1", "rank 0");
    METAGRAD_CHECK_ERROR(normalize_dim(-2, 0, "sum"), "sum", "dim -2", "rank 0");
    METAGRAD_CHECK_ERROR(normalize_dim(3, 3, "softmax"), "softmax", "dim 3", "rank 3");
    METAGRAD_CHECK_ERROR(normalize_dim(-4, 3, "sum"), "sum", "dim -4", "rank 3");
  }

  TEST_CASE("core.shape: broadcasting follows NumPy and errors name the op and both shapes") {
    CHECK(broadcast_shapes(Shape{2, 1, 4}, Shape{3, 1}, "add") == (Shape{2, 3, 4}));
    CHECK(broadcast_shapes(Shape{}, Shape{5}, "add") == (Shape{5}));
    CHECK(broadcast_shapes(Shape{1}, Shape{0}, "add") == (Shape{0}));
    CHECK(broadcast_shapes(Shape{4, 1}, Shape{4, 1}, "add") == (Shape{4, 1}));
    METAGRAD_CHECK_ERROR(broadcast_shapes(Shape{2, 3}, Shape{4}, "mul"), "mul", "[2, 3]", "[4]", "dim 1: 3 vs 4");
  }
}
