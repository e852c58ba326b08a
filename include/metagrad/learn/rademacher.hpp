// SPDX-License-Identifier: MIT
// The empirical Rademacher complexity of a model class on n points,
//   R̂ = E_σ sup_{h ∈ H} (1/n) Σ_i σ_i h(x_i),   σ_i uniform in {−1, +1},
// estimated by drawing σ and maximising the correlation by gradient ascent: over a norm-bounded
// class (the caller's projection after every step, e.g. each weight matrix into a Frobenius ball)
// and, for the explanation-constrained class H_{φ,α}, subject to E_unlab φ(h, x) ≤ α through the
// augmented Lagrangian, by projected gradient ascent. It measures the claim of Pukdee et al. (NeurIPS 2023) directly: the
// constrained class fits random labels less well, and less as α tightens. Ascent finds a lower
// bound of each sup (exact for the linear classes the tests check against closed forms); a final
// iterate that still violates the constraint is reported with its violation.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/core/creation.hpp"
#include "metagrad/core/error.hpp"
#include "metagrad/core/random.hpp"
#include "metagrad/learn/constrained_fit.hpp"
#include "metagrad/learn/gradient_constraint.hpp"
#include "metagrad/learn/metrics.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/view.hpp"
#include "metagrad/optim/clip.hpp"
#include "metagrad/optim/sgd.hpp"

namespace metagrad::learn {

struct RademacherOptions {
  int draws = 20;     ///< sign vectors σ averaged over
  int steps = 300;    ///< ascent steps per draw
  /// Plain gradient ascent's step. Not Adam: projected Adam stalls short of the sup on the boundary
  /// of a ball (its per-coordinate scaling does not point along the gradient), projected gradient
  /// ascent does not. Keep lr·ρ·α small enough for the penalty's curvature.
  double lr = 0.05;
  /// Each step's gradient is clipped to this norm (0: never): the penalty's gradient on a deep
  /// class far outside the constraint set would otherwise throw the ascent off.
  double max_grad_norm = 1;
  AugmentedLagrangianOptions constraint{.rho = 10, .dual_every = 10};
  std::uint64_t seed = 0;  ///< the signs and the models' initial weights
};

struct RademacherEstimate {
  double mean = 0, std = 0;            ///< over draws (sample std)
  std::vector<double> values;          ///< (1/n) Σ σ_i h(x_i) at the end of each draw's ascent
  std::vector<double> violations;      ///< max(0, E φ − α) there (0 without a constraint)
  std::vector<std::vector<double>> signs;  ///< σ of each draw
};

/// R̂ of the class {make_model(gen) after project} on points x [n, ...] (a model maps them to one
/// output each), constrained by `constraint` when it is not null. project(model) is applied after
/// every step (and at the start) to keep the class bounded: without a bound the sup is infinite.
template <Floating T, class Make, class Project>
RademacherEstimate empirical_rademacher(Make&& make_model, const Tensor<T>& x, const GradientConstraint<T>* constraint,
                                        Project&& project, const RademacherOptions& o = {}) {
  constexpr const char* op = "empirical_rademacher";
  check(x.defined() && x.dim() >= 2 && x.size(0) > 0, op, "needs points [n, ...], got ", x.defined() ? x.shape() : Shape{});
  check(o.draws > 0 && o.steps > 0, op, "draws and steps must be > 0, got ", o.draws, " and ", o.steps);
  const std::int64_t n = x.size(0);
  Generator gen(o.seed);
  RademacherEstimate out;
  for (int d = 0; d < o.draws; ++d) {
    std::vector<double> sigma(static_cast<std::size_t>(n));
    for (auto& s : sigma) s = gen.below(2) == 0 ? -1.0 : 1.0;
    std::vector<T> sigma_t(sigma.begin(), sigma.end());
    const auto signs = from_vector<T>(sigma_t, Shape{n, 1});
    auto model = make_model(gen);
    auto& module = detail::module_of(model);
    project(model);
    SGD<T> opt(module.parameters(), {.lr = o.lr});
    AugmentedLagrangian<T> al(o.constraint);
    const auto correlation = [&] {
      const auto out_x = metagrad::detail::run_model<T>(model, x);
      check(out_x.numel() == n, op, "the model must give one output per point, got ", out_x.shape(), " for ", x.shape());
      return div(sum(mul(reshape(out_x, Shape{n, 1}), signs)), T(static_cast<double>(n)));
    };
    for (int step = 0; step < o.steps; ++step) {
      opt.zero_grad();
      const auto neg = mul(correlation(), T(-1));
      Tensor<T> loss = neg;
      double phi = 0;
      if (constraint != nullptr) {
        const auto estimate = constraint->estimate(model, gen);
        phi = static_cast<double>(estimate.item());
        loss = al.objective(neg, estimate, constraint->alpha());
      }
      backward(loss);
      if (o.max_grad_norm > 0) clip_grad_norm_(module.parameters(), o.max_grad_norm);
      opt.step();
      project(model);
      if (constraint != nullptr) al.after_step(phi - constraint->alpha());
    }
    double value = 0;
    {
      NoGradGuard no_grad;
      value = static_cast<double>(correlation().item());
    }
    out.values.push_back(value);
    out.violations.push_back(constraint != nullptr ? std::max(0.0, constraint->value(model) - constraint->alpha()) : 0.0);
    out.signs.push_back(std::move(sigma));
  }
  const auto summary = summarize(out.values);
  out.mean = summary.mean;
  out.std = summary.std;
  return out;
}

/// Scales t in place (no graph) into the Frobenius ball of radius `radius`: the projection of a
/// norm-bounded class.
template <Floating T>
void project_to_ball(Tensor<T>& t, double radius) {
  double sq = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) sq += static_cast<double>(t.data()[i]) * static_cast<double>(t.data()[i]);
  const double norm = std::sqrt(sq);
  if (norm <= radius) return;
  T* p = t.mutable_data();
  const T scale = static_cast<T>(radius / norm);
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] *= scale;
}

}  // namespace metagrad::learn
