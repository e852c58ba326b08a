// SPDX-License-Identifier: MIT
// Learning-rate schedules as values. A Schedule maps a step count (0, 1, 2, ...) to a factor of
// the base learning rate, in closed form (so a resumed run needs only the step count). Schedules
// compose: `a * b` multiplies factors (PyTorch's ChainedScheduler), `a.then(n, b)` follows a for n
// steps and b afterwards with its own count restarted (SequentialLR), e.g.
//   linear_warmup(100).then(100, cosine_decay(900))
// LRScheduler applies one to any optimizer with lr() / set_lr(double).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>
#include <utility>
#include <vector>

#include "metagrad/core/error.hpp"

namespace metagrad {

class Schedule {
 public:
  explicit Schedule(std::function<double(std::int64_t)> factor) : factor_(std::move(factor)) {}

  /// The factor of the base learning rate at `step` (>= 0).
  double operator()(std::int64_t step) const {
    check(step >= 0, "Schedule", "step ", step, " must be >= 0");
    return factor_(step);
  }

  /// Both schedules at once: the product of their factors.
  friend Schedule operator*(Schedule a, Schedule b) {
    return Schedule([a = std::move(a), b = std::move(b)](std::int64_t t) { return a(t) * b(t); });
  }

  /// This schedule for the first `steps` steps, then `next` counted from 0 again.
  Schedule then(std::int64_t steps, Schedule next) const {
    check(steps >= 0, "Schedule::then", "switch step ", steps, " must be >= 0");
    return Schedule([first = *this, steps, next = std::move(next)](std::int64_t t) {
      return t < steps ? first(t) : next(t - steps);
    });
  }

 private:
  std::function<double(std::int64_t)> factor_;
};

/// The same factor at every step.
inline Schedule constant_schedule(double factor = 1.0) {
  return Schedule([factor](std::int64_t) { return factor; });
}

/// gamma^floor(step / step_size) (PyTorch StepLR).
inline Schedule step_decay(std::int64_t step_size, double gamma = 0.1) {
  check(step_size > 0, "step_decay", "step_size ", step_size, " must be > 0");
  return Schedule([=](std::int64_t t) { return std::pow(gamma, static_cast<double>(t / step_size)); });
}

/// gamma^(number of milestones <= step) (PyTorch MultiStepLR); milestones may come in any order.
inline Schedule multistep_decay(std::vector<std::int64_t> milestones, double gamma = 0.1) {
  std::sort(milestones.begin(), milestones.end());
  return Schedule([milestones = std::move(milestones), gamma](std::int64_t t) {
    const auto passed = std::upper_bound(milestones.begin(), milestones.end(), t) - milestones.begin();
    return std::pow(gamma, static_cast<double>(passed));
  });
}

/// Half a cosine from 1 down to min_factor over total_steps, then min_factor (PyTorch
/// CosineAnnealingLR with eta_min = min_factor * base lr, except that it stays at the minimum
/// after total_steps instead of rising again).
inline Schedule cosine_decay(std::int64_t total_steps, double min_factor = 0.0) {
  check(total_steps > 0, "cosine_decay", "total_steps ", total_steps, " must be > 0");
  return Schedule([=](std::int64_t t) {
    const double progress = static_cast<double>(std::min(t, total_steps)) / static_cast<double>(total_steps);
    return min_factor + (1.0 - min_factor) * (1.0 + std::cos(std::numbers::pi * progress)) / 2.0;
  });
}

/// Linear from start_factor to end_factor over `steps` steps, then end_factor (PyTorch LinearLR);
/// the usual warmup.
inline Schedule linear_warmup(std::int64_t steps, double start_factor = 0.0, double end_factor = 1.0) {
  check(steps > 0, "linear_warmup", "steps ", steps, " must be > 0");
  return Schedule([=](std::int64_t t) {
    return start_factor +
           (end_factor - start_factor) * static_cast<double>(std::min(t, steps)) / static_cast<double>(steps);
  });
}

/// Sets an optimizer's learning rate to base_lr * schedule(step): at construction for step 0, and
/// after each step() for the next. Opt is any optimizer with lr() and set_lr(double).
template <class Opt>
class LRScheduler {
 public:
  /// base_lr defaults to the optimizer's learning rate now.
  LRScheduler(Opt& optimizer, Schedule schedule, std::int64_t start_step = 0)
      : LRScheduler(optimizer, std::move(schedule), optimizer.lr(), start_step) {}
  LRScheduler(Opt& optimizer, Schedule schedule, double base_lr, std::int64_t start_step)
      : optimizer_(optimizer), schedule_(std::move(schedule)), base_lr_(base_lr), step_(start_step) {
    apply();
  }

  /// Advances one step (call after optimizer.step()).
  void step() {
    ++step_;
    apply();
  }
  std::int64_t step_count() const { return step_; }
  double base_lr() const { return base_lr_; }
  double lr() const { return optimizer_.lr(); }

 private:
  void apply() { optimizer_.set_lr(base_lr_ * schedule_(step_)); }

  Opt& optimizer_;
  Schedule schedule_;
  double base_lr_;
  std::int64_t step_;
};

}  // namespace metagrad
