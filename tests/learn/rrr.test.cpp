// SPDX-License-Identifier: MIT
#include "metagrad/learn/erm.hpp"
#include "metagrad/learn/rrr.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/softmax.hpp"
#include "loss_fixtures.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::learn;
using namespace metagrad::learn_test;

namespace rrr_test {
/// A batch whose example 1 has an empty mask: the unsquared norm's kink.
learn::Batch<double> with_empty_row(learn::Batch<double> b) {
  auto m = b.mask.detach() * 1.0;
  const auto in = m.size(1);
  for (std::int64_t i = 0; i < in; ++i) m.fresh_data()[in + i] = 0;
  b.mask = m;
  return b;
}
}  // namespace rrr_test

TEST_SUITE("learn.rrr") {
  TEST_CASE("learn.rrr: both penalties of a linear model match their closed forms") {
    Generator gen(11);
    nn::Linear<double> net(4, 3, gen);
    const auto b = rrr_test::with_empty_row(random_batch(5, 4, 3, gen));
    const auto w = net.weight.detach();
    // LogitSumL2: ∂Σ_k z_k/∂x = Σ_k W_k for every example.
    double l2 = 0, ross = 0;
    const auto p = softmax(net.forward(b.x), 1);
    for (std::int64_t n = 0; n < 5; ++n) {
      double sq = 0;
      for (std::int64_t i = 0; i < 4; ++i) {
        double colsum = 0, expected_w = 0;
        for (std::int64_t k = 0; k < 3; ++k) colsum += w(k, i), expected_w += p(n, k) * w(k, i);
        const double m = b.mask(n, i);
        sq += m * colsum * m * colsum;
        // Ross: ∂Σ_k log p_k/∂x = Σ_k W_k − K Σ_j p_j W_j.
        const double g = colsum - 3 * expected_w;
        ross += m * g * m * g;
      }
      l2 += std::sqrt(sq);
    }
    CHECK(rrr_penalty(net, b, RrrForm::LogitSumL2).item() == doctest::Approx(l2).epsilon(1e-12));
    CHECK(rrr_penalty(net, b, RrrForm::Ross).item() == doctest::Approx(ross).epsilon(1e-12));
    Rrr<double> rrr({.lambda = 2.5, .form = RrrForm::Ross});
    const double ce = cross_entropy(net.forward(b.x), b.y).item();
    CHECK(rrr(net, b).item() == doctest::Approx(ce + 2.5 * ross).epsilon(1e-12));
  }

  TEST_CASE("learn.rrr: the loss passes gradcheck in the parameters to second order, both forms") {
    Generator gen(12);
    auto net = tanh_mlp(3, 4, 3, gen);
    // Example 1's empty mask puts it at the norm's kink: the zero subgradient must hold there too.
    const auto b = rrr_test::with_empty_row(random_batch(3, 3, 3, gen));
    for (const auto form : {RrrForm::LogitSumL2, RrrForm::Ross}) {
      INFO("form ", to_string(form));
      Rrr<double> rrr({.lambda = 0.7, .form = form});
      const auto result = gradcheck(loss_of_params(net, rrr, b), net->parameters(), {.order = 2});
      CHECK_MESSAGE(result.ok, result.report);
    }
  }

  TEST_CASE("learn.rrr: an empty mask adds nothing and keeps the gradient finite") {
    Generator gen(13);
    auto net = tanh_mlp(4, 5, 3, gen);
    auto b = random_batch(4, 4, 3, gen);
    b.mask = zeros<double>(b.x.shape());
    Rrr<double> rrr({.lambda = 10});
    const auto loss = rrr(net, b);
    CHECK(loss.item() == doctest::Approx(cross_entropy(net->forward(b.x), b.y).item()).epsilon(1e-14));
    backward(loss);
    for (const auto& param : net->parameters()) CHECK(all_finite(param.grad()));
  }

  TEST_CASE("learn.rrr: Adam steps on RRR shrink the masked input gradient; steps on ERM do not") {
    Generator gen(14);
    const auto b = decoy_batch(24, 4, 3, gen);
    // The same initial weights for both.
    Generator g1(7), g2(7), g3(7);
    auto rrr_net = tanh_mlp(4, 8, 3, g1), erm_net = tanh_mlp(4, 8, 3, g2), init = tanh_mlp(4, 8, 3, g3);
    const double before = rrr_penalty(rrr_net, b).item();
    Rrr<double> rrr({.lambda = 1});
    Erm<double> erm;
    adam_steps(rrr_net, rrr, b, 60, 0.03);
    adam_steps(erm_net, erm, b, 60, 0.03);
    const double after_rrr = rrr_penalty(rrr_net, b).item(), after_erm = rrr_penalty(erm_net, b).item();
    MESSAGE("masked gradient norm: before ", before, ", after RRR ", after_rrr, ", after ERM ", after_erm);
    CHECK(after_rrr < 0.2 * before);
    CHECK(after_erm > 0.5 * before);  // ERM keeps using the shortcut
    CHECK(after_erm > 10 * after_rrr);
    // And RRR still fits the labels from the other features.
    CHECK(cross_entropy(rrr_net->forward(b.x), b.y).item() < cross_entropy(init->forward(b.x), b.y).item());
  }

  TEST_CASE("learn.rrr: name, setting and bad input") {
    Generator gen(15);
    auto net = tanh_mlp(4, 5, 3, gen);
    const auto b = random_batch(3, 4, 3, gen);
    Rrr<double> rrr({.lambda = 10, .form = RrrForm::Ross});
    CHECK(rrr.name() == "rrr");
    CHECK(rrr.setting().dump() == R"({"lambda":10.0,"form":"ross"})");
    auto bad = b;
    bad.mask = ones<double>(Shape{3, 5});
    METAGRAD_CHECK_ERROR(rrr(net, bad), "Rrr", "mask [3, 5]", "[3, 4]");
    bad.mask = Tensor<double>();
    METAGRAD_CHECK_ERROR(rrr(net, bad), "Rrr", "needs a mask");
    bad = b;
    bad.y = from_vector<std::int64_t>({0, -1, 1}, Shape{3});
    METAGRAD_CHECK_ERROR(rrr(net, bad), "Rrr", "label -1");
    METAGRAD_CHECK_ERROR(Rrr<double>({.lambda = -1}), "Rrr", "lambda");
    bad = b;
    bad.mask = ones<double>(Shape{3, 4, 1});
    METAGRAD_CHECK_ERROR(rrr_penalty(net, bad), "rrr_penalty", "[3, 4, 1]");
  }
}
