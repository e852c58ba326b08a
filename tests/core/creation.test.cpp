// SPDX-License-Identifier: MIT
#include "metagrad/core/creation.hpp"
#include "test_util.hpp"

using namespace metagrad;

namespace {
template <class T>
std::vector<T> values_of(const Tensor<T>& t) { return t.to_vector(); }
}  // namespace

TEST_SUITE("core.creation") {
  TEST_CASE("core.creation: constants") {
    CHECK(values_of(full<float>(Shape{2, 2}, 1.5f)) == std::vector<float>(4, 1.5f));
    CHECK(values_of(zeros<double>(Shape{3})) == std::vector<double>(3, 0.0));
    CHECK(values_of(ones<double>(Shape{2})) == std::vector<double>(2, 1.0));
    const auto t = tensor<double>({{1.0, 2.0, 3.0}});
    CHECK(zeros_like(t).shape() == t.shape());
    CHECK(values_of(ones_like(t)) == std::vector<double>(3, 1.0));
    CHECK(values_of(full_like(t, -2.0)) == std::vector<double>(3, -2.0));
    const auto s = scalar_tensor<double>(4.0);
    CHECK(s.dim() == 0);
    CHECK(s.item() == 4.0);
    CHECK_FALSE(s.requires_grad());
    CHECK(zeros<double>(Shape{0, 3}).numel() == 0);
  }

  TEST_CASE("core.creation: arange") {
    CHECK(values_of(arange<double>(5.0)) == std::vector<double>{0, 1, 2, 3, 4});
    CHECK(values_of(arange<double>(1.0, 2.0, 0.25)) == std::vector<double>{1.0, 1.25, 1.5, 1.75});
    CHECK(values_of(arange<double>(5.0, 0.0, -2.0)) == std::vector<double>{5, 3, 1});
    CHECK(values_of(arange<std::int64_t>(2, 7, 2)) == std::vector<std::int64_t>{2, 4, 6});
    CHECK(arange<double>(3.0, 3.0).numel() == 0);
    CHECK(arange<double>(3.0, 1.0).numel() == 0);  // an empty range, not a negative count
    CHECK(arange<float>(0.0f, 1.0f, 0.1f).numel() == 10);
    METAGRAD_CHECK_ERROR(arange<double>(0.0, 1.0, 0.0), "arange", "step");
  }

  TEST_CASE("core.creation: linspace includes both ends") {
    CHECK(values_of(linspace<double>(0.0, 1.0, 5)) == std::vector<double>{0.0, 0.25, 0.5, 0.75, 1.0});
    CHECK(values_of(linspace<double>(-1.0, 1.0, 3)) == std::vector<double>{-1.0, 0.0, 1.0});
    CHECK(values_of(linspace<double>(2.0, 9.0, 1)) == std::vector<double>{2.0});
    CHECK(linspace<double>(0.0, 1.0, 0).numel() == 0);
    const auto l = linspace<float>(0.0f, 3.0f, 7);
    CHECK(l(6) == 3.0f);
    METAGRAD_CHECK_ERROR(linspace<double>(0.0, 1.0, -1), "linspace", "-1");
  }

  TEST_CASE("core.creation: eye") {
    CHECK(values_of(eye<double>(3)) == std::vector<double>{1, 0, 0, 0, 1, 0, 0, 0, 1});
    const auto r = eye<float>(2, 3);
    CHECK(r.shape() == (Shape{2, 3}));
    CHECK(values_of(r) == std::vector<float>{1, 0, 0, 0, 1, 0});
    CHECK(values_of(eye<std::int64_t>(3, 2)) == std::vector<std::int64_t>{1, 0, 0, 1, 0, 0});
  }

  TEST_CASE("core.creation: from_vector and tensor literals") {
    const auto v = from_vector<double>({1, 2, 3, 4, 5, 6}, Shape{2, 3});
    CHECK(v(1, 0) == 4.0);
    CHECK(from_vector<float>({1, 2}).shape() == (Shape{2}));
    METAGRAD_CHECK_ERROR(from_vector<double>({1, 2, 3}, Shape{2, 2}), "from_vector", "3 values", "[2, 2]");
    const auto m = tensor<float>({{1, 2}, {3, 4}, {5, 6}});
    CHECK(m.shape() == (Shape{3, 2}));
    CHECK(m(2, 1) == 6.0f);
    CHECK(tensor<double>({7.0}).shape() == (Shape{1}));
    METAGRAD_CHECK_ERROR((tensor<float>({{1, 2}, {3}})), "tensor", "ragged");
  }

  TEST_CASE("core.creation: Eigen round trip, either storage order") {
    Eigen::MatrixXd col(2, 3);  // column-major
    col << 1, 2, 3, 4, 5, 6;
    const auto t = from_eigen(col);
    CHECK(t.shape() == (Shape{2, 3}));
    CHECK(values_of(t) == std::vector<double>{1, 2, 3, 4, 5, 6});
    CHECK(to_eigen(t) == col);
    const RowMatrix<float> row = RowMatrix<float>::Random(4, 5);
    CHECK(to_eigen(from_eigen(row)) == row);
    const auto column = to_eigen(tensor<double>({1.0, 2.0, 3.0}));
    CHECK(column.rows() == 3);
    CHECK(column.cols() == 1);
    METAGRAD_CHECK_ERROR(to_eigen(zeros<double>(Shape{2, 2, 2})), "to_eigen", "[2, 2, 2]");
  }

  TEST_CASE("core.creation: random creators reject bad arguments by name") {
    Generator gen(1);
    METAGRAD_CHECK_ERROR(bernoulli<double>(Shape{2}, 1.5, gen), "bernoulli", "1.5");
    METAGRAD_CHECK_ERROR(randint(3, 3, Shape{2}, gen), "randint", "[3, 3)");
  }
}
