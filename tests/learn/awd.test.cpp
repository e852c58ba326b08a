// SPDX-License-Identifier: MIT
#include "metagrad/learn/awd.hpp"

#include <cmath>
#include <complex>
#include <memory>
#include <numbers>
#include <vector>

#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/conv.hpp"
#include "metagrad/nn/flatten.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/sequential.hpp"
#include "test_util.hpp"

namespace awd_test {
using namespace metagrad;

inline std::vector<double> values(const Tensor<double>& t) { return {t.data(), t.data() + t.numel()}; }

/// db5 plus a fixed perturbation, so no wavelet condition holds.
inline Tensor<double> perturbed_db5() {
  auto h = nn::wavelets::filter<double>(nn::wavelets::db5);
  const std::vector<double> bump{0.03, -0.02, 0.01, 0.05, -0.04, 0.02, 0.0, -0.01, 0.03, 0.02};
  return add(h, from_vector<double>(bump));
}

/// A small smooth CNN (tanh, so attributions have non-trivial derivatives of every order).
inline std::shared_ptr<nn::Sequential<double>> tiny_cnn(std::int64_t side, Generator& gen) {
  auto net = std::make_shared<nn::Sequential<double>>();
  net->emplace_back<nn::Conv2d<double>>(1, 2, 3, gen);
  net->emplace_back<nn::Tanh<double>>();
  net->emplace_back<nn::Flatten<double>>();
  net->emplace_back<nn::Linear<double>>(2 * (side - 2) * (side - 2), 3, gen);
  return net;
}

/// The DFT-based CMF loss written directly with complex numbers.
inline double cmf_direct(const std::vector<double>& h) {
  const std::size_t l = h.size();
  std::vector<double> power(l);
  for (std::size_t k = 0; k < l; ++k) {
    std::complex<double> z = 0;
    for (std::size_t n = 0; n < l; ++n) z += h[n] * std::polar(1.0, -2 * std::numbers::pi * double(k * n) / double(l));
    power[k] = std::norm(z);
  }
  double loss = 0;
  for (std::size_t k = 0; k < l / 2; ++k) loss += std::pow(power[k] + power[k + l / 2] - 2, 2);
  return loss / 2;
}

/// ½ Σ_{lags −L, −L+2, ..., L} (Σ_m h[m] h[m + lag] − δ_lag)², directly.
inline double conv_direct(const std::vector<double>& h) {
  const auto l = static_cast<std::int64_t>(h.size());
  double loss = 0;
  for (std::int64_t lag = -l; lag <= l; lag += 2) {
    double v = 0;
    for (std::int64_t m = 0; m < l; ++m)
      if (m + lag >= 0 && m + lag < l) v += h[static_cast<std::size_t>(m)] * h[static_cast<std::size_t>(m + lag)];
    loss += std::pow(v - (lag == 0 ? 1.0 : 0.0), 2);
  }
  return loss / 2;
}
}  // namespace awd_test

TEST_SUITE("learn.awd") {
  using namespace metagrad;
  using metagrad::testing::allclose;

  TEST_CASE("learn.awd: every wavelet-constraint loss is about 0 at db5 and db2") {
    for (const auto& h :
         {nn::wavelets::filter<double>(nn::wavelets::db5), nn::wavelets::filter<double>(nn::wavelets::db2)}) {
      CHECK(learn::awd_lowpass_sum_loss(h).item() < 1e-22);
      CHECK(learn::awd_highpass_sum_loss(h).item() < 1e-22);
      CHECK(learn::awd_l2norm_loss(h).item() < 1e-22);  // the tables' rounding: Σh² − 1 ≈ 1e-12
      CHECK(learn::awd_cmf_loss(h).item() < 1e-22);
      CHECK(learn::awd_conv_loss(h).item() < 1e-22);
    }
  }

  TEST_CASE("learn.awd: constraint losses against hand computations at a perturbed filter") {
    const auto h = awd_test::perturbed_db5();
    const auto v = awd_test::values(h);
    double s = 0, s1 = 0, n2 = 0;
    for (std::size_t n = 0; n < v.size(); ++n) {
      s += v[n];
      s1 += (n % 2 == 0 ? 1 : -1) * v[v.size() - 1 - n];
      n2 += v[n] * v[n];
    }
    CHECK(learn::awd_lowpass_sum_loss(h).item() ==
          doctest::Approx(0.5 * std::pow(s - std::sqrt(2.0), 2)).epsilon(1e-12));
    CHECK(learn::awd_highpass_sum_loss(h).item() == doctest::Approx(0.5 * s1 * s1).epsilon(1e-12));
    CHECK(learn::awd_l2norm_loss(h).item() == doctest::Approx(0.5 * std::pow(n2 - 1, 2)).epsilon(1e-12));
    CHECK(learn::awd_cmf_loss(h).item() == doctest::Approx(awd_test::cmf_direct(v)).epsilon(1e-12));
    CHECK(learn::awd_conv_loss(h).item() == doctest::Approx(awd_test::conv_direct(v)).epsilon(1e-12));
    CHECK(learn::awd_lowpass_sum_loss(h).item() > 1e-4);  // the perturbation is seen
    CHECK(learn::awd_cmf_loss(h).item() > 1e-4);
    // A 4-tap filter too, where the grids are small enough to check by eye.
    const auto h4 = tensor<double>({0.3, -0.1, 0.7, 0.2});
    CHECK(learn::awd_cmf_loss(h4).item() == doctest::Approx(awd_test::cmf_direct(awd_test::values(h4))).epsilon(1e-12));
    CHECK(learn::awd_conv_loss(h4).item() ==
          doctest::Approx(awd_test::conv_direct(awd_test::values(h4))).epsilon(1e-12));
  }

  TEST_CASE("learn.awd: reconstruction and L1 losses use the original's normalisation") {
    const auto x = reshape(tensor<double>({1, 2, 3, 4, 5, 6}), Shape{2, 1, 3});
    const auto r = reshape(tensor<double>({1, 2, 2, 4, 5, 8}), Shape{2, 1, 3});
    CHECK(learn::awd_reconstruction_loss(x, r).item() == doctest::Approx((1.0 + 4.0) / 2));
    const std::vector<Tensor<double>> parts{reshape(tensor<double>({-1, 2}), Shape{2, 1}),
                                            reshape(tensor<double>({3, -4, 5, 6}), Shape{2, 2})};
    // (3 + 18) / (batch 2 · 2 tensors)
    CHECK(learn::awd_l1_loss(std::span<const Tensor<double>>(parts)).item() == doctest::Approx(21.0 / 4));
  }

  TEST_CASE("learn.awd: saliency is W⁻¹ᵀ∇f(x) at any filter, input-x-gradient its product with the coefficients") {
    Generator gen(11);
    const std::int64_t side = 7;
    auto net = awd_test::tiny_cnn(side, gen);
    const auto x = randn<double>(Shape{2, 1, side, side}, gen);
    const auto h0 = awd_test::perturbed_db5().requires_grad_();  // not invertible: the residual carries x
    const auto coeffs = nn::dwt2d(x, h0, 2);
    const auto sal = learn::awd_attributions<double>(*net, h0, coeffs, x, {.target = 1, .create_graph = false});
    const auto ixg = learn::awd_attributions<double>(
        *net, h0, coeffs, x, {.target = 1, .method = learn::AwdAttribution::input_x_gradient, .create_graph = false});
    // ∇f(x) of the target logit summed over the batch, at x itself.
    const auto xg = x.detach().requires_grad_();
    const auto gx = grad(sum(narrow((*net)(xg), 1, 1, 1)), xg);
    // <saliency, δs> = <∇f(x), W⁻¹ δs> for a random direction δs (W⁻¹ is linear in the coefficients).
    std::vector<Tensor<double>> dirs;
    double lhs = 0;
    const auto parts = coeffs.tensors();
    for (std::size_t i = 0; i < parts.size(); ++i) {
      dirs.push_back(randn<double>(parts[i].shape(), gen));
      lhs += sum(mul(sal[i], dirs[i])).item();
      CHECK(allclose(ixg[i], mul(parts[i].detach(), sal[i]), 1e-14, 1e-12));
    }
    const auto rhs = sum(mul(gx, nn::idwt2d(coeffs.with_tensors(dirs), h0.detach()))).item();
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-10));
  }

  TEST_CASE("learn.awd: second-order gradcheck of the attribution loss") {
    Generator gen(12);
    const std::int64_t side = 5;
    auto net = awd_test::tiny_cnn(side, gen);
    const auto x = randn<double>(Shape{2, 1, side, side}, gen);
    const auto db2 = nn::wavelets::filter<double>(nn::wavelets::db2);
    const auto h0 = add(db2, randn<double>(Shape{4}, gen) * 0.1);
    for (const auto method : {learn::AwdAttribution::saliency, learn::AwdAttribution::input_x_gradient}) {
      // Without the residual the objective is an exact composition: check it in h0 and x.
      const auto exact = gradcheck(
          [&](const std::vector<Tensor<double>>& a) {
            const auto attr = learn::awd_attributions<double>(*net, a[0], nn::dwt2d(a[1], a[0], 2), a[1],
                                                              {.target = 2, .method = method, .use_residuals = false});
            return learn::awd_l1_loss(std::span<const Tensor<double>>(attr));
          },
          {h0, x}, {.order = 2});
      CHECK_MESSAGE(exact.ok, learn::awd_attribution_name(method), " without residuals: ", exact.report);
      // With it (the original's straight-through in h0), the derivative in x is exact at a
      // perfect-reconstruction filter, where W⁻¹W = I.
      const auto residual = gradcheck(
          [&](const std::vector<Tensor<double>>& a) {
            const auto attr = learn::awd_attributions<double>(*net, db2, nn::dwt2d(a[0], db2, 2), a[0],
                                                              {.target = 2, .method = method});
            return learn::awd_l1_loss(std::span<const Tensor<double>>(attr));
          },
          {x}, {.order = 2});
      CHECK_MESSAGE(residual.ok, learn::awd_attribution_name(method), " with residuals: ", residual.report);
    }
    const auto constraints = gradcheck(
        [](const std::vector<Tensor<double>>& a) {
          return learn::awd_cmf_loss(a[0]) + learn::awd_conv_loss(a[0]) + learn::awd_l2norm_loss(a[0]) +
                 learn::awd_lowpass_sum_loss(a[0]) + learn::awd_highpass_sum_loss(a[0]);
        },
        {h0}, {.order = 2});
    CHECK_MESSAGE(constraints.ok, constraints.report);
  }

  TEST_CASE("learn.awd: training from a noisy db5 brings the constraints back and keeps the reconstruction") {
    Generator gen(13);
    const std::int64_t side = 8;
    auto net = awd_test::tiny_cnn(side, gen);
    const auto x = randn<double>(Shape{4, 1, side, side}, gen);
    nn::DWT2d<double> dwt(add(nn::wavelets::filter<double>(nn::wavelets::db5), randn<double>(Shape{10}, gen) * 0.05),
                          2);
    learn::AwdOptions o{.lambdas = {.lamL1wave = 0, .lamL1attr = 1e-3}, .attribution = {.target = 0}, .lr = 3e-3};
    learn::AwdTrainer<double> trainer(dwt, *net, o);
    const auto first = trainer.step(x);
    learn::AwdLossValues last;
    for (int i = 0; i < 300; ++i) last = trainer.step(x);
    const auto constraint_sum = [](const learn::AwdLossValues& v) {
      return v.lowpass_sum + v.highpass_sum + v.l2norm + v.cmf + v.conv;
    };
    CHECK(std::isfinite(first.l1_attr));
    CHECK(last.total < first.total);
    CHECK(constraint_sum(last) < 0.1 * constraint_sum(first));
    CHECK(last.reconstruction < 0.1 * first.reconstruction);
  }

  TEST_CASE("learn.awd: bad input names the op and the shapes") {
    METAGRAD_CHECK_ERROR(learn::awd_cmf_loss(zeros<double>(Shape{5})), "awd_cmf_loss", "[5]", "even");
    METAGRAD_CHECK_ERROR(learn::awd_conv_loss(zeros<double>(Shape{2, 4})), "awd_conv_loss", "[2, 4]");
    METAGRAD_CHECK_ERROR(learn::awd_reconstruction_loss(zeros<double>(Shape{2, 3}), zeros<double>(Shape{2, 4})),
                         "awd_reconstruction_loss", "[2, 3]", "[2, 4]");
    const std::vector<Tensor<double>> mixed{zeros<double>(Shape{2, 3}), zeros<double>(Shape{3, 3})};
    METAGRAD_CHECK_ERROR(learn::awd_l1_loss(std::span<const Tensor<double>>(mixed)), "awd_l1_loss", "[3, 3]");
    Generator gen(14);
    auto net = awd_test::tiny_cnn(5, gen);
    const auto x = randn<double>(Shape{1, 1, 5, 5}, gen);
    const auto h0 = nn::wavelets::filter<double>(nn::wavelets::db2).requires_grad_();
    METAGRAD_CHECK_ERROR(learn::awd_attributions<double>(*net, h0, nn::dwt2d(x, h0, 1), x, {.target = 3}),
                         "awd_attributions", "target 3", "[1, 3]");
    nn::DWT2d<double> dwt(nn::wavelets::filter<double>(nn::wavelets::db2), 1);
    learn::AwdOptions bad;
    bad.lambdas.lamCMF = -1;
    METAGRAD_CHECK_ERROR(learn::AwdTrainer<double>(dwt, *net, bad), "AwdTrainer", "-1");
  }
}
