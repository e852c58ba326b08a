// SPDX-License-Identifier: MIT
#include "metagrad/learn/pgd_ex.hpp"
#include "loss_fixtures.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::learn;
using namespace metagrad::learn_test;

TEST_SUITE("learn.pgd_ex") {
  TEST_CASE("learn.pgd_ex: the adversary raises the loss, stays in the box and leaves unmasked features alone") {
    Generator gen(41);
    auto net = tanh_mlp(5, 6, 3, gen);
    const auto b = random_batch(6, 5, 3, gen);
    const double eps = 0.4;
    const double clean = cross_entropy(net->forward(b.x), b.y).item();
    double previous = clean;
    for (int steps : {1, 4, 10}) {
      INFO("steps ", steps);
      const auto adv = pgd_attack(net, b, eps, steps);
      CHECK(!adv.requires_grad());
      for (std::int64_t i = 0; i < adv.numel(); ++i) {
        const double d = adv.data()[i] - b.x.data()[i], m = b.mask.data()[i];
        if (m == 0) CHECK(d == 0.0);  // bit-identical
        else CHECK(std::abs(d) <= eps * m + 1e-12);
      }
      const double attacked = cross_entropy(net->forward(adv), b.y).item();
      CHECK(attacked > clean);
      if (steps == 10) CHECK(attacked >= previous - 1e-9);  // more steps, at least as strong here
      previous = attacked;
    }
    const auto none = pgd_attack(net, b, eps, 0);
    CHECK(testing::same(none, b.x));
  }

  TEST_CASE("learn.pgd_ex: one full step on a linear model lands on the box corner of the loss gradient's sign") {
    Generator gen(42);
    nn::Linear<double> net(4, 3, gen);
    const auto b = random_batch(3, 4, 3, gen);
    const auto adv = pgd_attack(net, b, 0.25, 1);
    auto x = b.x.detach().requires_grad_();
    const auto g = grad(cross_entropy(net.forward(x), b.y), x);
    for (std::int64_t i = 0; i < adv.numel(); ++i) {
      const double s = g.data()[i] > 0 ? 1.0 : (g.data()[i] < 0 ? -1.0 : 0.0);
      CHECK(adv.data()[i] == doctest::Approx(b.x.data()[i] + 0.25 * b.mask.data()[i] * s).epsilon(1e-14));
    }
  }

  TEST_CASE("learn.pgd_ex: the loss is CE(x) + CE(x_adv), and passes gradcheck with x_adv held fixed") {
    Generator gen(43);
    auto net = tanh_mlp(3, 4, 3, gen);
    const auto b = random_batch(3, 3, 3, gen);
    PgdEx<double> pgd({.eps = 0.3, .steps = 3});
    const auto adv = pgd_attack(net, b, 0.3, 3);
    const double expected = cross_entropy(net->forward(b.x), b.y).item() + cross_entropy(net->forward(adv), b.y).item();
    CHECK(pgd(net, b).item() == doctest::Approx(expected).epsilon(1e-12));
    // x_adv is piecewise constant in the parameters (signs and clips), so the differences see it fixed.
    const auto result = gradcheck(loss_of_params(net, pgd, b), net->parameters());
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("learn.pgd_ex: name, setting and bad input") {
    Generator gen(44);
    auto net = tanh_mlp(4, 5, 3, gen);
    const auto b = random_batch(3, 4, 3, gen);
    PgdEx<double> pgd({.eps = 0.5, .steps = 4});
    CHECK(pgd.name() == "pgd_ex");
    CHECK(pgd.setting().dump() == R"({"eps":0.5,"steps":4,"step_size":0.125})");
    auto bad = b;
    bad.mask = ones<double>(Shape{4});
    METAGRAD_CHECK_ERROR(pgd(net, bad), "PgdEx", "mask [4]", "[3, 4]");
    bad = b;
    bad.y = from_vector<std::int64_t>({0, 3, 1}, Shape{3});
    METAGRAD_CHECK_ERROR(pgd(net, bad), "PgdEx", "label 3");
    METAGRAD_CHECK_ERROR(PgdEx<double>({.eps = -1}), "PgdEx", "eps");
    METAGRAD_CHECK_ERROR(PgdEx<double>({.steps = -2}), "PgdEx", "steps");
    METAGRAD_CHECK_ERROR(pgd_attack(net, b, 0.1, -1), "pgd_attack", "steps");
  }
}
