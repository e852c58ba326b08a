// SPDX-License-Identifier: MIT
#include <cmath>
#include <numbers>

#include "metagrad/optim/schedule.hpp"
#include "metagrad/optim/sgd.hpp"
#include "test_util.hpp"

using namespace metagrad;
using doctest::Approx;

TEST_SUITE("optim.schedule") {
  TEST_CASE("optim.step_decay / multistep_decay: factors at each step") {
    const auto s = step_decay(3, 0.5);
    CHECK(s(0) == 1.0);
    CHECK(s(2) == 1.0);
    CHECK(s(3) == 0.5);
    CHECK(s(8) == 0.25);
    const auto m = multistep_decay({5, 2}, 0.1);  // sorted internally
    CHECK(m(1) == 1.0);
    CHECK(m(2) == Approx(0.1).epsilon(1e-15));
    CHECK(m(4) == Approx(0.1).epsilon(1e-15));
    CHECK(m(5) == Approx(0.01).epsilon(1e-15));
  }

  TEST_CASE("optim.cosine_decay: half a cosine down to the minimum, then flat") {
    const auto c = cosine_decay(4, 0.2);
    CHECK(c(0) == 1.0);
    CHECK(c(1) == Approx(0.2 + 0.8 * (1 + std::cos(std::numbers::pi / 4)) / 2).epsilon(1e-15));
    CHECK(c(2) == Approx(0.6).epsilon(1e-15));
    CHECK(c(4) == Approx(0.2).epsilon(1e-15));
    CHECK(c(9) == Approx(0.2).epsilon(1e-15));
  }

  TEST_CASE("optim.linear_warmup: linear from the start factor, then the end factor") {
    const auto w = linear_warmup(4, 0.2);
    CHECK(w(0) == Approx(0.2).epsilon(1e-15));
    CHECK(w(1) == Approx(0.4).epsilon(1e-15));
    CHECK(w(4) == 1.0);
    CHECK(w(100) == 1.0);
  }

  TEST_CASE("optim.Schedule: composition by product and by sequence") {
    const auto chained = linear_warmup(2, 0.5) * step_decay(2, 0.1);
    CHECK(chained(0) == Approx(0.5).epsilon(1e-15));
    CHECK(chained(1) == Approx(0.75).epsilon(1e-15));
    CHECK(chained(2) == Approx(0.1).epsilon(1e-15));
    const auto seq = linear_warmup(2, 0.0).then(2, cosine_decay(2));
    CHECK(seq(0) == 0.0);
    CHECK(seq(1) == 0.5);
    CHECK(seq(2) == 1.0);  // cosine restarts at its step 0
    CHECK(seq(3) == Approx(0.5).epsilon(1e-15));
    CHECK(seq(4) == Approx(0.0).epsilon(1e-15));
    CHECK(constant_schedule(0.3)(7) == 0.3);
  }

  TEST_CASE("optim.LRScheduler: drives an optimizer's learning rate") {
    auto p = tensor<double>({1.0}).requires_grad_();
    SGD<double> opt({p}, {.lr = 0.2});
    LRScheduler sched(opt, linear_warmup(2, 0.5).then(2, multistep_decay({1}, 0.1)));
    CHECK(opt.lr() == Approx(0.1).epsilon(1e-15));
    sched.step();
    CHECK(opt.lr() == Approx(0.15).epsilon(1e-15));
    sched.step();
    CHECK(opt.lr() == Approx(0.2).epsilon(1e-15));
    sched.step();
    CHECK(opt.lr() == Approx(0.02).epsilon(1e-15));
    CHECK(sched.step_count() == 3);
    // Resuming at a step gives the same rate without replaying the steps.
    SGD<double> again({tensor<double>({1.0}).requires_grad_()}, {.lr = 0.2});
    LRScheduler resumed(again, linear_warmup(2, 0.5).then(2, multistep_decay({1}, 0.1)), 3);
    CHECK(again.lr() == opt.lr());
  }

  TEST_CASE("optim.Schedule: bad arguments are clear errors") {
    METAGRAD_CHECK_ERROR(step_decay(0), "step_decay", "step_size 0");
    METAGRAD_CHECK_ERROR(cosine_decay(-1), "cosine_decay", "total_steps -1");
    METAGRAD_CHECK_ERROR(linear_warmup(0), "linear_warmup", "steps 0");
    METAGRAD_CHECK_ERROR(constant_schedule()(-1), "Schedule", "step -1");
  }
}
