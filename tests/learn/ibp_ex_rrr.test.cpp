// SPDX-License-Identifier: MIT
#include "metagrad/learn/erm.hpp"
#include "metagrad/learn/ibp_ex_rrr.hpp"
#include "metagrad/ops/reduction.hpp"
#include "loss_fixtures.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::learn;
using namespace metagrad::learn_test;

TEST_SUITE("learn.ibp_ex_rrr") {
  TEST_CASE("learn.ibp_ex_rrr: the loss is IBP-Ex's plus weight · the L1 masked logit-sum gradient") {
    Generator gen(61);
    nn::Linear<double> linear(4, 3, gen);
    const auto b = random_batch(5, 4, 3, gen);
    // Linear model: ∂Σ_k z_k/∂x = Σ_k W_k for every example.
    double l1 = 0;
    for (std::int64_t n = 0; n < 5; ++n)
      for (std::int64_t i = 0; i < 4; ++i) {
        double colsum = 0;
        for (std::int64_t k = 0; k < 3; ++k) colsum += linear.weight(k, i);
        l1 += std::abs(b.mask(n, i) * colsum);
      }
    CHECK(l1_gradient_penalty(linear, b).item() == doctest::Approx(l1).epsilon(1e-12));

    auto net = tanh_mlp(4, 5, 3, gen);
    const IbpExOptions o{.eps_start = 0.2, .eps_max = 1, .alpha0 = 0.9};
    IbpExRrr<double> both({.ibp = o, .weight = 0.3});
    IbpEx<double> ibp(o);
    both.on_epoch(2, 5);
    ibp.on_epoch(2, 5);
    CHECK(both.eps() == ibp.eps());
    CHECK(both.alpha() == ibp.alpha());
    CHECK(both(net, b).item() ==
          doctest::Approx(ibp(net, b).item() + 0.3 * l1_gradient_penalty(net, b).item()).epsilon(1e-12));
  }

  TEST_CASE("learn.ibp_ex_rrr: the loss passes gradcheck in the parameters to second order") {
    Generator gen(62);
    auto net = tanh_mlp(3, 4, 3, gen);
    const auto b = random_batch(3, 3, 3, gen);
    IbpExRrr<double> loss({.ibp = {.eps_start = 0.2, .eps_max = 1, .alpha0 = 0.7}, .weight = 0.5});
    const auto result = gradcheck(loss_of_params(net, loss, b), net->parameters(), {.order = 2});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("learn.ibp_ex_rrr: Adam steps keep the L1 masked gradient and the bound gap below ERM's") {
    Generator gen(63);
    const auto b = decoy_batch(24, 4, 3, gen);
    Generator g1(9), g2(9);
    auto net = tanh_mlp(4, 8, 3, g1), erm_net = tanh_mlp(4, 8, 3, g2);  // identical
    const double eps = 1;
    IbpExRrr<double> loss({.ibp = {.eps_start = eps, .eps_max = 1, .alpha0 = 0}, .weight = 0.1});
    Erm<double> erm;
    adam_steps(net, loss, b, 150, 0.01);
    adam_steps(erm_net, erm, b, 150, 0.01);
    const auto gap = [&](learn_test::Net n) { return mean(ibp_logit_bounds(n, b, eps).width()).item(); };
    const double l1 = l1_gradient_penalty(net, b).item(), l1_erm = l1_gradient_penalty(erm_net, b).item();
    MESSAGE("bound gap ", gap(net), " (ERM ", gap(erm_net), "); L1 masked gradient ", l1, " (ERM ", l1_erm, ")");
    CHECK(gap(net) < 0.5 * gap(erm_net));
    CHECK(l1 < 0.2 * l1_erm);
  }

  TEST_CASE("learn.ibp_ex_rrr: name, setting and bad input") {
    Generator gen(64);
    auto net = tanh_mlp(4, 5, 3, gen);
    const auto b = random_batch(3, 4, 3, gen);
    IbpExRrr<double> loss({.ibp = {.eps_start = 0, .eps_max = 1, .alpha0 = 1}, .weight = 1});
    CHECK(loss.name() == "ibp_ex_rrr");
    CHECK(loss.setting().dump() == R"({"eps_start":0.0,"eps_max":1.0,"alpha0":1.0,"ramp":"per_epoch","weight":1.0})");
    auto bad = b;
    bad.mask = ones<double>(Shape{3, 2});
    METAGRAD_CHECK_ERROR(loss(net, bad), "IbpExRrr", "mask [3, 2]", "[3, 4]");
    bad = b;
    bad.y = from_vector<std::int64_t>({0, 1, 3}, Shape{3});
    METAGRAD_CHECK_ERROR(loss(net, bad), "IbpExRrr", "label 3");
    METAGRAD_CHECK_ERROR(IbpExRrr<double>({.weight = -1}), "IbpExRrr", "weight");
  }
}
