// SPDX-License-Identifier: MIT
// Training a student to simulate a teacher (SMaT's static_teacher and learnable_teacher setups):
// SGD epochs over the student set, whose labels are the teacher's predictions, with the teacher's
// explanation as extra supervision (β > 0), and early stopping on validation simulability with a
// patience (after at least min_epochs); the best epoch's student is restored at the end. With a
// learnable teacher explainer, every student step is also a SMaT meta step (learn/smat.hpp), whose validation batches cycle
// through the student-valid split; the explainer's state at the best epoch is restored too.
#pragma once
#include <memory>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "metagrad/data/dataset.hpp"
#include "metagrad/learn/simulation.hpp"
#include "metagrad/learn/smat.hpp"
#include "metagrad/learn/snapshot.hpp"
#include "metagrad/optim/adam.hpp"

namespace metagrad::learn {

template <Floating T>
using TeacherExplanationFn = std::function<Tensor<T>(std::span<const std::int64_t> rows)>;

struct StudentFitOptions {
  int max_epochs = 50;
  int patience = 10;             // epochs without a better valid simulability before stopping
  // Epochs that always run, whatever the patience: a student whose valid simulability sits on an
  // early plateau (the teacher's majority class, say) is not stopped there. 0: none.
  int min_epochs = 0;
  std::int64_t batch_size = 32;
  std::uint64_t seed = 0;
  SmatOptions smat{};            // beta and the student's SGD (used by every condition)
  double meta_lr = 5e-4;         // AdamW on the teacher explainer
  double meta_weight_decay = 1e-4;  // optax.adamw's default
};

struct EpochLog {
  int epoch = 0;                 // from 1
  double train_loss = 0;         // mean student loss over the epoch's batches
  double valid_simulability = 0;
  double meta_outer_loss = 0;    // mean outer loss of the meta steps (0 without them)
};

struct StudentFitResult {
  double best_valid_simulability = 0;
  int best_epoch = 0;
  int epochs_run = 0;
  std::vector<EpochLog> log;
};

/// Trains `student` (a Student) on `train`, whose labels are the teacher's predictions, selecting
/// on simulability of `valid`. `teacher_explanation(rows)` gives the teacher's explanation logits
/// of training rows (unused when smat.beta is 0). With `teacher_explainer` (a module whose
/// parameters teacher_explanation depends on), runs SMaT: a meta step before every student step.
template <Floating T, class S, class D>
StudentFitResult fit_student(S& student, const D& train, const D& valid, const TeacherExplanationFn<T>& teacher_explanation,
                             const StudentFitOptions& options, nn::Module<T>* teacher_explainer = nullptr,
                             const std::function<void(const EpochLog&)>& on_epoch = {}) {
  constexpr const char* op = "fit_student";
  check(train.size() > 0 && valid.size() > 0, op, "empty training (", train.size(), ") or validation (", valid.size(),
        ") set");
  check(options.max_epochs >= 1 && options.patience >= 1 && options.batch_size >= 1, op,
        "needs max_epochs, patience and batch_size >= 1, got ", options.max_epochs, ", ", options.patience, " and ",
        options.batch_size);
  check(options.min_epochs >= 0 && options.min_epochs <= options.max_epochs, op, "min_epochs ", options.min_epochs,
        " must be between 0 and max_epochs (", options.max_epochs, ")");
  check_smat_options(options.smat, op);
  check(options.smat.beta == 0 || teacher_explanation, op, "beta ", options.smat.beta,
        " needs the teacher's explanations");
  const bool meta = teacher_explainer != nullptr;
  check(!meta || options.smat.beta > 0, op, "a learnable teacher explainer needs beta > 0");
  auto& model = student.model();
  const auto params = student.parameters();
  StudentSGD<T> sgd(params, options.smat.student_lr, options.smat.max_grad_norm, options.smat.weight_decay);
  std::vector<Tensor<T>> meta_params;
  std::unique_ptr<AdamW<T>> meta_opt;
  if (meta) {
    meta_params = teacher_explainer->parameters();
    for (auto& p : meta_params) p.requires_grad_();
    meta_opt = std::make_unique<AdamW<T>>(meta_params,
                                          AdamOptions{.lr = options.meta_lr, .weight_decay = options.meta_weight_decay});
  }
  const auto valid_labels = valid.labels.values();
  auto valid_simulability = [&] {
    model.eval();
    const auto pred = predict_in_batches(valid, [&](const D& b) { return student(b).logits; });
    model.train();
    return agreement(pred, valid_labels);
  };
  StateSnapshot<T> best_student(model, op);
  std::unique_ptr<StateSnapshot<T>> best_explainer;
  if (meta) best_explainer = std::make_unique<StateSnapshot<T>>(*teacher_explainer, op);
  StudentFitResult result;
  result.best_valid_simulability = -1;
  const std::int64_t n = train.size(), b = options.batch_size, k_steps = options.smat.unroll_steps;
  std::int64_t valid_cursor = 0, valid_epoch = 0;
  std::vector<std::int64_t> valid_order;
  auto next_valid_batch = [&] {
    if (valid_cursor == 0 || valid_cursor >= valid.size()) {
      valid_order = data::permutation(valid.size(), options.seed ^ (0x5eedULL + static_cast<std::uint64_t>(valid_epoch++)));
      valid_cursor = 0;
    }
    const std::int64_t end = std::min(valid_cursor + b, valid.size());
    const auto rows = std::span(valid_order).subspan(static_cast<std::size_t>(valid_cursor),
                                                     static_cast<std::size_t>(end - valid_cursor));
    valid_cursor = end;
    return valid.subset(rows);
  };
  model.train();
  for (int epoch = 1; epoch <= options.max_epochs; ++epoch) {
    const auto order = data::permutation(n, options.seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
    const std::int64_t batches = (n + b - 1) / b;
    auto rows_of = [&](std::int64_t i) {
      const std::int64_t s = (i % batches) * b;
      return std::span(order).subspan(static_cast<std::size_t>(s), static_cast<std::size_t>(std::min(b, n - s)));
    };
    EpochLog log;
    log.epoch = epoch;
    for (std::int64_t i = 0; i < batches; ++i) {
      if (meta && options.smat.route == MetaRoute::unrolled) {
        // K batches from this one on (cycling within the epoch); the first is the real step's.
        std::vector<D> batches_k;
        std::vector<std::vector<std::int64_t>> rows_k;
        for (std::int64_t k = 0; k < k_steps; ++k) {
          const auto r = rows_of(i + k);
          rows_k.emplace_back(r.begin(), r.end());
          batches_k.push_back(train.subset(r));
        }
        const auto step = smat_meta_gradient<T, S, D>(
            student, batches_k, [&](std::int64_t k) { return teacher_explanation(rows_k[static_cast<std::size_t>(k)]); },
            next_valid_batch(), meta_params, options.smat);
        assign_parameters(params, step.first_step);
        apply_meta_gradients<T>(*meta_opt, meta_params, step.meta_grads);
        log.meta_outer_loss += static_cast<double>(step.outer_loss) / static_cast<double>(batches);
        log.train_loss += static_cast<double>(step.inner_loss) / static_cast<double>(batches);
        continue;
      }
      const auto rows = rows_of(i);
      const D batch = train.subset(rows);
      if (meta) {  // the implicit route: the meta-gradient, then the student's own step
        const std::vector<D> one{batch};
        const auto step = smat_meta_gradient<T, S, D>(
            student, one, [&](std::int64_t) { return teacher_explanation(rows); }, next_valid_batch(), meta_params,
            options.smat);
        apply_meta_gradients<T>(*meta_opt, meta_params, step.meta_grads);
        log.meta_outer_loss += static_cast<double>(step.outer_loss) / static_cast<double>(batches);
      }
      Tensor<T> teacher;
      if (options.smat.beta > 0) {
        NoGradGuard no_grad;
        teacher = teacher_explanation(rows).detach();
      }
      const auto loss = simulation_loss(student(batch), batch.labels, teacher, options.smat.beta);
      log.train_loss += static_cast<double>(loss.item()) / static_cast<double>(batches);
      sgd.step(loss);
    }
    log.valid_simulability = valid_simulability();
    result.log.push_back(log);
    result.epochs_run = epoch;
    if (on_epoch) on_epoch(log);
    if (log.valid_simulability > result.best_valid_simulability) {
      result.best_valid_simulability = log.valid_simulability;
      result.best_epoch = epoch;
      best_student.take(model);
      if (meta) best_explainer->take(*teacher_explainer);
    } else if (epoch >= options.min_epochs && epoch - result.best_epoch >= options.patience) {
      break;
    }
  }
  model.load_state_dict(best_student.named());
  if (meta) teacher_explainer->load_state_dict(best_explainer->named());
  model.eval();
  return result;
}

}  // namespace metagrad::learn
