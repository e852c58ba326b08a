// SPDX-License-Identifier: MIT
#include "metagrad/nn/wavelet.hpp"

#include <cmath>
#include <vector>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"
#include "test_util.hpp"

namespace wavelet_test {
using namespace metagrad;

/// max |a − b| / max |b|.
template <Floating T>
double relative_error(const Tensor<T>& a, const Tensor<T>& b) {
  double err = 0, scale = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    err = std::max(err, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i])));
    scale = std::max(scale, std::abs(static_cast<double>(b.data()[i])));
  }
  return err / scale;
}

template <Floating T>
double reconstruction_error(const Shape& shape, int levels, std::uint64_t seed) {
  Generator gen(seed);
  const auto x = randn<T>(shape, gen);
  const auto h0 = nn::wavelets::filter<T>(nn::wavelets::db5);
  const auto back = nn::idwt2d(nn::dwt2d(x, h0, levels), h0);
  REQUIRE(back.shape() == x.shape());
  return relative_error(back, x);
}

/// All coefficient tensors of dwt2d(x, h0) flattened and joined, for gradcheck.
inline Tensor<double> flat_coeffs(const Tensor<double>& x, const Tensor<double>& h0, int levels) {
  std::vector<Tensor<double>> parts;
  for (const auto& t : nn::dwt2d(x, h0, levels).tensors()) parts.push_back(reshape(t, Shape{t.numel()}));
  return concat(parts, 0);
}
}  // namespace wavelet_test

TEST_SUITE("nn.wavelet") {
  using namespace metagrad;
  using metagrad::testing::allclose;

  TEST_CASE("nn.wavelet: perfect reconstruction with db5, float and double, even and odd sizes") {
    // The MNIST demo's size and depth, and odd sizes (zero mode extends an odd axis by one zero).
    // The tabulated db5 is orthonormal to about 1e-12 (Σh² − 1 = 1.4e-12): double's floor here.
    CHECK(wavelet_test::reconstruction_error<double>(Shape{2, 1, 28, 28}, 4, 1) < 1e-11);
    CHECK(wavelet_test::reconstruction_error<double>(Shape{1, 2, 13, 17}, 3, 2) < 1e-11);
    CHECK(wavelet_test::reconstruction_error<double>(Shape{1, 1, 1, 1}, 4, 3) < 1e-11);  // no size is too small
    CHECK(wavelet_test::reconstruction_error<float>(Shape{3, 1, 28, 28}, 4, 4) < 2e-6);
    CHECK(wavelet_test::reconstruction_error<float>(Shape{1, 1, 9, 31}, 4, 5) < 2e-6);
  }

  TEST_CASE("nn.wavelet: coefficient shapes follow pywt's zero mode, floor((n + L - 1) / 2)") {
    const auto c = nn::dwt2d(zeros<float>(Shape{2, 3, 28, 27}), nn::wavelets::filter<float>(nn::wavelets::db5), 4);
    REQUIRE(c.levels() == 4);
    CHECK(c.highs[0].shape() == Shape{2, 3, 3, 18, 18});
    CHECK(c.highs[1].shape() == Shape{2, 3, 3, 13, 13});
    CHECK(c.highs[2].shape() == Shape{2, 3, 3, 11, 11});
    CHECK(c.highs[3].shape() == Shape{2, 3, 3, 10, 10});
    CHECK(c.low.shape() == Shape{2, 3, 10, 10});
    CHECK(c.height == 28);
    CHECK(c.width == 27);
  }

  TEST_CASE("nn.wavelet: one Haar level against a hand computation") {
    // h0 = h1-flip of [a, a] with a = 1/√2: rows give a(x0 + x1) and a(x0 − x1), then columns the same.
    const double a = 1 / std::sqrt(2.0);
    const auto x = reshape(tensor<double>({{1, 2}, {3, 4}}), Shape{1, 1, 2, 2});
    const auto c = nn::dwt2d(x, tensor<double>({a, a}), 1);
    CHECK(c.low.item() == doctest::Approx(5));                                              // a·(3a + 7a)
    CHECK(allclose(reshape(c.highs[0], Shape{3}), tensor<double>({-2, -1, 0}), 1e-14, 0));  // LH, HL, HH
    CHECK(allclose(nn::wavelet_highpass(tensor<double>({1, 2, 3, 4})), tensor<double>({4, -3, 2, -1}), 0, 0));
  }

  TEST_CASE("nn.wavelet: the module holds h0 as its one parameter") {
    nn::DWT2d<float> dwt(nn::wavelets::filter<float>(nn::wavelets::db5), 4);
    REQUIRE(dwt.parameters().size() == 1);
    CHECK(dwt.h0.requires_grad());
    CHECK(dwt.h1().shape() == Shape{10});
    Generator gen(6);
    const auto x = randn<float>(Shape{2, 1, 28, 28}, gen);
    const auto back = dwt.inverse(dwt(x));
    CHECK(allclose(back, x, 1e-5, 0));
    // The reconstruction depends on h0: its gradient there is defined and finite.
    const auto g = grad(sum(square(back - x)), dwt.h0);
    CHECK(g.shape() == Shape{10});
  }

  TEST_CASE("nn.wavelet: second-order gradcheck of the transform and its inverse") {
    Generator gen(7);
    const auto x = randn<double>(Shape{1, 1, 5, 6}, gen);
    const auto h0 = randn<double>(Shape{4}, gen);  // any filter, not only orthogonal ones
    const auto forward =
        gradcheck([](const std::vector<Tensor<double>>& a) { return wavelet_test::flat_coeffs(a[0], a[1], 2); },
                  {x, h0}, {.order = 2});
    CHECK_MESSAGE(forward.ok, forward.report);
    const auto shapes = nn::dwt2d(x, h0, 2);
    std::vector<Tensor<double>> inputs{h0};
    for (const auto& t : shapes.tensors()) inputs.push_back(randn<double>(t.shape(), gen));
    const auto inverse = gradcheck(
        [&shapes](const std::vector<Tensor<double>>& a) {
          const std::vector<Tensor<double>> parts(a.begin() + 1, a.end());
          return nn::idwt2d(shapes.with_tensors(parts), a[0]);
        },
        inputs, {.order = 2});
    CHECK_MESSAGE(inverse.ok, inverse.report);
  }

  TEST_CASE("nn.wavelet: bad input names the op and the shapes") {
    const auto x = zeros<double>(Shape{1, 1, 8, 8});
    METAGRAD_CHECK_ERROR(nn::dwt2d(x, zeros<double>(Shape{3}), 2), "dwt2d", "[3]", "even length");
    METAGRAD_CHECK_ERROR(nn::dwt2d(x, zeros<double>(Shape{2, 2}), 2), "dwt2d", "[2, 2]", "1-D");
    METAGRAD_CHECK_ERROR(nn::dwt2d(zeros<double>(Shape{8, 8}), zeros<double>(Shape{4}), 2), "dwt2d", "4-D", "[8, 8]");
    METAGRAD_CHECK_ERROR(nn::dwt2d(x, zeros<double>(Shape{4}), 0), "dwt2d", "levels", "[1, 1, 8, 8]");
    METAGRAD_CHECK_ERROR(nn::dwt2d(zeros<double>(Shape{1, 1, 0, 8}), zeros<double>(Shape{4}), 1), "dwt2d", "empty");
    const auto h0 = nn::wavelets::filter<double>(nn::wavelets::db2);
    auto c = nn::dwt2d(x, h0, 2);
    c.highs[0] = zeros<double>(Shape{1, 1, 3, 4, 4});
    METAGRAD_CHECK_ERROR(nn::idwt2d(c, h0), "idwt2d", "highs of level 0", "[1, 1, 3, 5, 5]", "[1, 1, 3, 4, 4]");
    METAGRAD_CHECK_ERROR(nn::idwt2d(nn::dwt2d(x, h0, 2), nn::wavelets::filter<double>(nn::wavelets::db5)), "idwt2d",
                         "low of level 1");
    METAGRAD_CHECK_ERROR(nn::DWT2d<float>(zeros<float>(Shape{5}), 4), "DWT2d", "[5]");
  }
}
