// SPDX-License-Identifier: MIT
#include <cmath>
#include <limits>

#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/optim/clip.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

namespace {
/// Leaves whose .grad() is set to the given values.
std::vector<Tensor<double>> with_grads(const std::vector<Tensor<double>>& grads) {
  std::vector<Tensor<double>> params;
  for (const auto& g : grads) {
    auto p = zeros<double>(g.shape()).requires_grad_();
    p.set_grad(g);
    params.push_back(p);
  }
  return params;
}
}  // namespace

TEST_SUITE("optim.clip") {
  TEST_CASE("optim.clip_grad_norm_: returns the global norm and scales by max_norm / (norm + 1e-6)") {
    // grads (3, 4) and (12): global norm 13.
    auto params = with_grads({tensor<double>({3.0, 4.0}), tensor<double>({12.0})});
    const double norm = clip_grad_norm_(params, 6.5);
    CHECK(norm == 13.0);
    const double c = 6.5 / (13.0 + 1e-6);
    CHECK(allclose(params[0].grad(), tensor<double>({3.0 * c, 4.0 * c}), 0, 1e-15));
    CHECK(allclose(params[1].grad(), tensor<double>({12.0 * c}), 0, 1e-15));
  }

  TEST_CASE("optim.clip_grad_norm_: below max_norm nothing changes; infinity norm; no-gradient parameters") {
    auto params = with_grads({tensor<double>({3.0, -4.0})});
    params.push_back(zeros<double>(Shape{2}).requires_grad_());  // no gradient: skipped
    CHECK(clip_grad_norm_(params, 5.1) == 5.0);
    CHECK(params[0].grad().to_vector() == std::vector<double>{3.0, -4.0});
    CHECK(clip_grad_norm_(params, 2.0, std::numeric_limits<double>::infinity()) == 4.0);
    CHECK(allclose(params[0].grad(), tensor<double>({3.0 * 2.0 / (4.0 + 1e-6), -4.0 * 2.0 / (4.0 + 1e-6)}), 0, 1e-15));
    auto l1 = with_grads({tensor<double>({3.0, -4.0})});
    CHECK(clip_grad_norm_(l1, 100.0, 1.0) == doctest::Approx(7.0).epsilon(1e-15));
  }

  TEST_CASE("optim.clip_grad_norm_: non-finite norms") {
    auto params = with_grads({tensor<double>({std::nan(""), 1.0})});
    METAGRAD_CHECK_ERROR(clip_grad_norm_(params, 1.0, 2.0, true), "clip_grad_norm_", "non-finite");
    CHECK(std::isnan(clip_grad_norm_(params, 1.0)));
    CHECK(std::isnan(params[0].grad().data()[1]));  // scaled by NaN, as PyTorch does
    METAGRAD_CHECK_ERROR(clip_grad_norm_(params, -1.0), "clip_grad_norm_", "max_norm -1");
    METAGRAD_CHECK_ERROR(clip_grad_norm_(params, 1.0, 0.0), "clip_grad_norm_", "norm_type 0");
  }

  TEST_CASE("optim.clip_grad_value_: clamps each value") {
    auto params = with_grads({tensor<double>({-3.0, 0.5, 2.0})});
    clip_grad_value_(params, 1.0);
    CHECK(params[0].grad().to_vector() == std::vector<double>{-1.0, 0.5, 1.0});
    METAGRAD_CHECK_ERROR(clip_grad_value_(params, -1.0), "clip_grad_value_", "clip_value -1");
  }

  TEST_CASE("optim.clip_grad_norm: without a graph equals the in-place clip bit for bit") {
    Generator gen(11);
    const std::vector<Tensor<float>> grads{randn<float>(Shape{7, 3}, gen, 0.0f, 3.0f), randn<float>(Shape{5}, gen)};
    std::vector<Tensor<float>> params;
    for (const auto& g : grads) {
      params.push_back(zeros<float>(g.shape()).requires_grad_());
      params.back().set_grad(from_vector<float>(g.to_vector(), g.shape()));
    }
    const auto clipped = clip_grad_norm(grads, 1.5);
    clip_grad_norm_(params, 1.5);
    for (std::size_t i = 0; i < grads.size(); ++i) CHECK(clipped[i].to_vector() == params[i].grad().to_vector());
  }

  TEST_CASE("optim.clip_grad_norm: with a graph it is differentiable (orders 1 and 2 vs finite differences)") {
    // The gradients are functions of inputs; clipping is active (norm well above 0.5).
    auto f = [](const std::vector<Tensor<double>>& x) {
      const auto c = clip_grad_norm<double>({mul(x[0], x[0]), mul(x[1], 3.0)}, 0.5);
      return add(sum(mul(c[0], x[0])), sum(mul(c[1], c[1])));
    };
    const auto result = gradcheck(f, {tensor<double>({0.7, -1.1, 0.4}), tensor<double>({0.9, -0.3})}, {.order = 2});
    CHECK_MESSAGE(result.ok, result.report);
  }
}
