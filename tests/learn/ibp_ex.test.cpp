// SPDX-License-Identifier: MIT
#include "metagrad/learn/erm.hpp"
#include "metagrad/learn/ibp_ex.hpp"
#include "metagrad/ops/reduction.hpp"
#include "loss_fixtures.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::learn;
using namespace metagrad::learn_test;

namespace ibp_ex_test {
/// Mean width of the logit bounds over the box: how much the masked features can move the output.
double bound_gap(Net net, const learn::Batch<double>& b, double eps) {
  return mean(ibp_logit_bounds(net, b, eps).width()).item();
}
}  // namespace ibp_ex_test

TEST_SUITE("learn.ibp_ex") {
  TEST_CASE("learn.ibp_ex: the schedules follow robust_mlx's per-epoch updates") {
    IbpEx<double> ibp({.eps_start = 1, .eps_max = 2, .alpha0 = 0.9});
    CHECK(ibp.eps() == 1.0);  // before any on_epoch: the starting values
    CHECK(ibp.alpha() == 0.9);
    const int epochs = 4;
    double eps = 1, alpha = 0.9;  // the code's running updates after each epoch
    for (int e = 0; e < epochs; ++e) {
      ibp.on_epoch(e, epochs);
      CHECK(ibp.eps() == doctest::Approx(eps).epsilon(1e-14));
      CHECK(ibp.alpha() == doctest::Approx(alpha).epsilon(1e-14));
      eps += 2.0 / epochs;
      alpha -= 0.5 * 0.9 / epochs;
    }
    // Not clamped: from ε_start = 1 the last epoch's ε is 1 + 2·3/4 = 2.5 > ε_max; α stays above α₀/2.
    CHECK(ibp.eps() == doctest::Approx(2.5));
    CHECK(ibp.alpha() == doctest::Approx(0.9 * (1 - 3.0 / 8)));
    ibp.on_epoch(0, epochs);  // stateless: going back restores the start
    CHECK(ibp.eps() == 1.0);
    METAGRAD_CHECK_ERROR(ibp.on_epoch(4, 4), "IbpEx", "epoch 4");
    ibp.on_step(0.6);  // a per-epoch schedule ignores steps
    CHECK(ibp.eps() == 1.0);
  }

  TEST_CASE("learn.ibp_ex: Ramp::PerStep moves the same line every step, and the trainer's progress drives it") {
    IbpEx<double> ibp({.eps_start = 1, .eps_max = 2, .alpha0 = 0.9, .ramp = Ramp::PerStep});
    ibp.on_epoch(2, 4);  // epochs do not move a per-step schedule
    CHECK(ibp.eps() == 1.0);
    ibp.on_step(0.375);
    CHECK(ibp.eps() == doctest::Approx(1 + 0.375 * 2).epsilon(1e-14));
    CHECK(ibp.alpha() == doctest::Approx(0.9 * (1 - 0.5 * 0.375)).epsilon(1e-14));
    // At the epoch boundaries it agrees with the per-epoch schedule.
    IbpEx<double> per_epoch({.eps_start = 1, .eps_max = 2, .alpha0 = 0.9});
    per_epoch.on_epoch(3, 4);
    ibp.on_step(0.75);
    CHECK(ibp.eps() == doctest::Approx(per_epoch.eps()).epsilon(1e-14));
    CHECK(ibp.alpha() == doctest::Approx(per_epoch.alpha()).epsilon(1e-14));
    CHECK(ibp.setting()["ramp"] == "per_step");
    METAGRAD_CHECK_ERROR(ibp.on_step(1.5), "IbpEx", "progress 1.5");
  }

  TEST_CASE("learn.ibp_ex: ε = 0 gives the clean loss; the robust term is CE of the worst-case logits") {
    Generator gen(31);
    auto net = tanh_mlp(4, 5, 3, gen);
    const auto b = random_batch(5, 4, 3, gen);
    const double ce = cross_entropy(net->forward(b.x), b.y).item();
    IbpEx<double> zero({.eps_start = 0, .eps_max = 1, .alpha0 = 0.5});
    CHECK(zero(net, b).item() == doctest::Approx(ce).epsilon(1e-12));
    IbpEx<double> ibp({.eps_start = 0.3, .eps_max = 1, .alpha0 = 0.8});
    const auto r = b.mask * 0.3;
    const auto worst = worst_case_logits(interval_bounds(*net, b.x - r, b.x + r), b.y);
    const double expected = 0.8 * ce + 0.2 * cross_entropy(worst, b.y).item();
    CHECK(ibp(net, b).item() == doctest::Approx(expected).epsilon(1e-12));
    CHECK(ibp(net, b).item() > ce);  // the worst case is worse
  }

  TEST_CASE("learn.ibp_ex: examples with an empty mask stay out of the robust term") {
    Generator gen(32);
    auto net = tanh_mlp(4, 5, 3, gen);
    auto b = random_batch(4, 4, 3, gen);
    auto m = b.mask * 1.0;
    for (std::int64_t i = 0; i < 4; ++i) m.fresh_data()[4 + i] = 0;  // example 1
    b.mask = m;
    const auto rows = from_vector<std::int64_t>({0, 2, 3}, Shape{3});
    const auto y = from_vector<std::int64_t>({b.y(0), b.y(2), b.y(3)}, Shape{3});
    learn::Batch<double> active{index_select(b.x, 0, rows), y, index_select(b.mask, 0, rows), {}};
    CHECK(ibp_worst_case_loss(net, b, 0.5).item() ==
          doctest::Approx(ibp_worst_case_loss(net, active, 0.5).item()).epsilon(1e-12));
    b.mask = zeros<double>(b.x.shape());
    CHECK(ibp_worst_case_loss(net, b, 0.5).item() == 0.0);
  }

  TEST_CASE("learn.ibp_ex: the loss passes gradcheck in the parameters") {
    Generator gen(33);
    auto net = tanh_mlp(3, 4, 3, gen);
    const auto b = random_batch(3, 3, 3, gen);
    IbpEx<double> ibp({.eps_start = 0.2, .eps_max = 1, .alpha0 = 0.6});
    // Second order too: tanh keeps the bounds smooth; |W| is smooth away from W = 0.
    const auto result = gradcheck(loss_of_params(net, ibp, b), net->parameters(), {.order = 2});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("learn.ibp_ex: Adam steps on IBP-Ex keep the bound gap over the mask far below ERM's") {
    Generator gen(34);
    const auto b = decoy_batch(24, 4, 3, gen);
    Generator g1(8), g2(8), g3(8);
    auto ibp_net = tanh_mlp(4, 8, 3, g1), erm_net = tanh_mlp(4, 8, 3, g2), init = tanh_mlp(4, 8, 3, g3);  // identical
    const double eps = 1;
    // From a small initialisation both gaps grow as the weights do while fitting; ERM's grows with
    // its use of the shortcut, IBP-Ex's is held down (it stops shrinking once the margin exceeds it).
    IbpEx<double> ibp({.eps_start = eps, .eps_max = 1, .alpha0 = 0});
    Erm<double> erm;
    adam_steps(ibp_net, ibp, b, 150, 0.01);
    adam_steps(erm_net, erm, b, 150, 0.01);
    const double gap_ibp = ibp_ex_test::bound_gap(ibp_net, b, eps), gap_erm = ibp_ex_test::bound_gap(erm_net, b, eps);
    MESSAGE("mean logit bound gap at init ", ibp_ex_test::bound_gap(init, b, eps), "; after IBP-Ex ", gap_ibp,
            ", after ERM ", gap_erm);
    CHECK(gap_ibp < 0.5 * gap_erm);
    CHECK(ibp_worst_case_loss(ibp_net, b, eps).item() < ibp_worst_case_loss(erm_net, b, eps).item());
    // Both still fit the labels.
    const double ce0 = cross_entropy(init->forward(b.x), b.y).item();
    CHECK(cross_entropy(ibp_net->forward(b.x), b.y).item() < 0.5 * ce0);
    CHECK(cross_entropy(erm_net->forward(b.x), b.y).item() < 0.5 * ce0);
  }

  TEST_CASE("learn.ibp_ex: name, setting and bad input") {
    Generator gen(35);
    auto net = tanh_mlp(4, 5, 3, gen);
    const auto b = random_batch(3, 4, 3, gen);
    IbpEx<double> ibp({.eps_start = 0.1, .eps_max = 1, .alpha0 = 0.95});
    CHECK(ibp.name() == "ibp_ex");
    CHECK(ibp.setting().dump() == R"({"eps_start":0.1,"eps_max":1.0,"alpha0":0.95,"ramp":"per_epoch"})");
    auto bad = b;
    bad.mask = ones<double>(Shape{1, 4});
    METAGRAD_CHECK_ERROR(ibp(net, bad), "IbpEx", "mask [1, 4]", "[3, 4]");
    bad = b;
    bad.y = from_vector<std::int64_t>({0, 1, 7}, Shape{3});
    METAGRAD_CHECK_ERROR(ibp(net, bad), "IbpEx", "label 7");
    METAGRAD_CHECK_ERROR(IbpEx<double>({.eps_start = -1}), "IbpEx", "eps");
    METAGRAD_CHECK_ERROR(IbpEx<double>({.alpha0 = 1.5}), "IbpEx", "alpha0");
    METAGRAD_CHECK_ERROR(ibp_logit_bounds(net, b, -0.1), "ibp_logit_bounds", "eps");
  }
}
