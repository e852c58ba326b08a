// SPDX-License-Identifier: MIT
// An explanation as a constraint on a model's input gradients (Pukdee et al., NeurIPS 2023): on
// unlabelled points x a human (or a teacher) gives the gradient g(x) the model should have, and the
// class of admissible models is H_{φ,α} = {h : E_x φ(h, x) ≤ α} with the surrogate
//   SquaredError:  φ(h, x) = ‖m ⊙ (∇ₓs(x) − g(x))‖²
//   Alignment:     φ(h, x) = 1 − cos(m ⊙ ∇ₓs(x), m ⊙ g(x))   (direction only, in [0, 2])
// where s is the model's score: the sum of its outputs (its single output for a regression or
// binary model, the logit sum for a multi-class one, as RRR's) or, for a multi-class model, the
// logit of the class it predicts (the explanation of its own decision: a logit-sum gradient can
// vanish on the mask while the logits' differences, which decide the class, still read it), and m
// an optional mask of the features the
// explanation speaks about ("no gradient on the decoy half" is g = 0 on the decoy mask). Alignment
// leaves the gradient's scale free, which is what a classifier's logit needs: only the ranking of
// its scores is identified by labels. φ differentiates an input gradient, so training on it is
// second order in the parameters.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "metagrad/core/creation.hpp"
#include "metagrad/core/error.hpp"
#include "metagrad/core/random.hpp"
#include "metagrad/data/dataset.hpp"
#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/explain/explainer.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/compare.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad::learn {

enum class ConstraintForm { SquaredError, Alignment };

inline const char* to_string(ConstraintForm f) { return f == ConstraintForm::SquaredError ? "squared_error" : "alignment"; }

/// Whose input gradient the explanation constrains.
enum class ConstraintScore {
  OutputSum,       ///< Σ_k z_k (one backward pass; the output itself for a single-output model)
  PredictedClass,  ///< z_{argmax z} per point (the class is chosen without a gradient)
};

inline const char* to_string(ConstraintScore s) { return s == ConstraintScore::OutputSum ? "output_sum" : "predicted_class"; }

/// Unlabelled points and the explanation given at each: the target input gradient (x's shape) and
/// an optional mask (x's shape, 1 on the features the constraint covers; undefined: all of them).
template <Floating T>
struct Explanations {
  Tensor<T> x;
  Tensor<T> gradient;
  Tensor<T> mask{};
  std::int64_t size() const { return x.defined() ? x.size(0) : 0; }
};

struct GradientConstraintOptions {
  ConstraintForm form = ConstraintForm::SquaredError;
  ConstraintScore score = ConstraintScore::OutputSum;
  /// The tolerance α of H_{φ,α}; also the per-point threshold of constraint_satisfaction.
  double alpha = 0;
  /// Unlabelled points per training estimate of E φ (0: all of them every step).
  std::int64_t batch = 256;
};

namespace detail {

template <Floating T>
void check_explanations(const Explanations<T>& e, ConstraintForm form, const char* op) {
  check(e.x.defined() && e.x.dim() >= 2 && e.x.size(0) > 0, op, "needs unlabelled points [N, ...], got ",
        e.x.defined() ? e.x.shape() : Shape{});
  check(e.gradient.defined() && e.gradient.shape() == e.x.shape(), op, "the explanations ",
        e.gradient.defined() ? e.gradient.shape() : Shape{}, " must have the points' shape ", e.x.shape());
  check(!e.mask.defined() || e.mask.shape() == e.x.shape(), op, "the mask ", e.mask.defined() ? e.mask.shape() : Shape{},
        " must have the points' shape ", e.x.shape());
  if (form == ConstraintForm::Alignment) {
    // cos is undefined against a zero explanation: say which point, rather than train on 0/0.
    const auto g = flatten(e.mask.defined() ? mul(e.gradient, e.mask) : e.gradient, 1);
    const auto n = norm(g.detach(), 2, {1});
    for (std::int64_t i = 0; i < n.numel(); ++i)
      check(n.data()[i] > 0, op, "the alignment form needs a nonzero (masked) explanation at every point; point ", i,
            " of ", e.x.shape(), " has none");
  }
}

}  // namespace detail

/// φ(h, x_i) per point [N] for points x with explanations g (and mask m, may be undefined), attached
/// to the parameters when create_graph.
template <Floating T, class M>
Tensor<T> constraint_values(M& model, const Tensor<T>& x, const Tensor<T>& g, const Tensor<T>& mask, ConstraintForm form,
                            bool create_graph = true, ConstraintScore score = ConstraintScore::OutputSum) {
  constexpr const char* op = "constraint_values";
  check(g.defined() && g.shape() == x.shape(), op, "the explanations ", g.defined() ? g.shape() : Shape{},
        " must have the points' shape ", x.shape());
  check(!mask.defined() || mask.shape() == x.shape(), op, "the mask ", mask.defined() ? mask.shape() : Shape{},
        " must have the points' shape ", x.shape());
  check(x.defined() && x.dim() >= 1 && x.size(0) > 0, op, "needs a batch of points [N, ...], got ",
        x.defined() ? x.shape() : Shape{});
  Tensor<T> input_grad;
  {
    EnableGradGuard grad_on;
    Tensor<T> var = x.detach().requires_grad_();
    const Tensor<T> z = metagrad::detail::run_model<T>(model, var);
    check(z.dim() >= 1 && z.size(0) == x.size(0), op, "the model must give outputs [", x.size(0), ", ...] for ",
          x.shape(), ", got ", z.shape());
    Tensor<T> s;
    if (score == ConstraintScore::OutputSum) {
      s = sum(z);
    } else {
      check(z.dim() == 2, op, "the predicted-class score needs logits [N, classes], got ", z.shape());
      s = metagrad::detail::target_score(z, argmax(z.detach(), 1), op);
    }
    GradOptions<T> go;
    go.create_graph = create_graph;
    go.allow_unused = true;  // a ReLU network dead on every unit at x has no input gradient: it is 0
    input_grad = grad(s, var, go);
    if (!input_grad.defined()) input_grad = zeros<T>(x.shape());
  }
  const auto masked = [&](const Tensor<T>& t) { return flatten(mask.defined() ? mul(t, mask.detach()) : t, 1); };
  const auto grad = masked(input_grad), target = masked(g.detach());
  if (form == ConstraintForm::SquaredError) return sum(square(sub(grad, target)), {1});
  const auto dot = sum(mul(grad, target), {1});
  // The tiny floor keeps a zero model gradient finite (cos = 0 there, φ = 1).
  const auto denom = add(mul(norm(grad, 2, {1}), norm(target, 2, {1})), T(std::numeric_limits<T>::min()));
  return sub(T(1), div(dot, denom));
}

/// The fraction of points whose φ(h, x) is at most alpha: how often the explanation holds.
template <Floating T, class M>
double constraint_satisfaction(M& model, const Explanations<T>& at, ConstraintForm form, double alpha,
                               std::int64_t chunk = 1024, ConstraintScore score = ConstraintScore::OutputSum) {
  detail::check_explanations(at, form, "constraint_satisfaction");
  std::int64_t holds = 0;
  for (std::int64_t start = 0; start < at.size(); start += chunk) {
    const auto len = std::min(chunk, at.size() - start);
    const auto part = [&](const Tensor<T>& t) { return t.defined() ? narrow(t, 0, start, len) : t; };
    const auto phi = constraint_values(model, part(at.x), part(at.gradient), part(at.mask), form, false, score);
    for (std::int64_t i = 0; i < len; ++i) holds += static_cast<double>(phi.data()[i]) <= alpha;
  }
  return static_cast<double>(holds) / static_cast<double>(at.size());
}

/// The constraint E φ(h, x) ≤ α on a set of unlabelled explanations: a random-batch estimate of
/// E φ to train on, its value over every point, and the violation c = E φ − α.
template <Floating T>
class GradientConstraint {
 public:
  GradientConstraint(Explanations<T> data, GradientConstraintOptions options)
      : data_(std::move(data)), o_(options) {
    constexpr const char* op = "GradientConstraint";
    detail::check_explanations(data_, o_.form, op);
    check(o_.alpha >= 0, op, "alpha must be >= 0, got ", o_.alpha);
    check(o_.batch >= 0, op, "batch must be >= 0, got ", o_.batch);
  }

  /// A batch of the unlabelled points drawn without replacement with gen (all of them when the
  /// batch covers the set).
  Explanations<T> sample(Generator& gen) const {
    const std::int64_t m = data_.size();
    if (o_.batch == 0 || o_.batch >= m) return data_;
    // A partial Fisher–Yates shuffle: the first `batch` entries are a uniform sample.
    order_.resize(static_cast<std::size_t>(m));
    std::iota(order_.begin(), order_.end(), std::int64_t{0});
    for (std::int64_t i = 0; i < o_.batch; ++i) {
      const auto j = i + static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(m - i)));
      std::swap(order_[static_cast<std::size_t>(i)], order_[static_cast<std::size_t>(j)]);
    }
    const std::span<const std::int64_t> rows(order_.data(), static_cast<std::size_t>(o_.batch));
    const auto take = [&](const Tensor<T>& t) { return t.defined() ? data::take_rows(t, rows, "GradientConstraint") : t; };
    return {take(data_.x), take(data_.gradient), take(data_.mask)};
  }

  /// Mean φ over a batch (from sample), attached to the parameters: the training estimate of E φ.
  template <class M>
  Tensor<T> estimate(M& model, const Explanations<T>& batch) const {
    return mean(constraint_values(model, batch.x, batch.gradient, batch.mask, o_.form, true, o_.score));
  }
  template <class M>
  Tensor<T> estimate(M& model, Generator& gen) const {
    return estimate(model, sample(gen));
  }

  /// Mean φ over every unlabelled point (no graph).
  template <class M>
  double value(M& model, std::int64_t chunk = 1024) const {
    double total = 0;
    for (std::int64_t start = 0; start < data_.size(); start += chunk) {
      const auto len = std::min(chunk, data_.size() - start);
      const auto part = [&](const Tensor<T>& t) { return t.defined() ? narrow(t, 0, start, len) : t; };
      total += static_cast<double>(
          sum(constraint_values(model, part(data_.x), part(data_.gradient), part(data_.mask), o_.form, false, o_.score))
              .item());
    }
    return total / static_cast<double>(data_.size());
  }

  double alpha() const { return o_.alpha; }
  const GradientConstraintOptions& options() const { return o_; }
  const Explanations<T>& data() const { return data_; }

 private:
  Explanations<T> data_;
  GradientConstraintOptions o_;
  mutable std::vector<std::int64_t> order_;
};

}  // namespace metagrad::learn
