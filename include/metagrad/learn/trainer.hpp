// SPDX-License-Identifier: MIT
// Trainer: the loop every learn/ method plugs its loss into. Per epoch it tells the loss the epoch
// (schedules such as IBP-Ex's ε and α), shuffles with a seed, takes one optimizer step per batch,
// evaluates on the validation set, prints a progress line with an ETA, and keeps a copy of the
// best state by a named validation metric (worst-group accuracy, say). It stops after `patience`
// epochs without improvement or when the time budget would be overrun, and leaves the model in its
// best state, so what a caller tests is what validation chose — never simply the last epoch.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/core/error.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/data/dataset.hpp"
#include "metagrad/io/safetensors.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/learn/metrics.hpp"
#include "metagrad/learn/snapshot.hpp"
#include "metagrad/nn/named_tensors.hpp"
#include "metagrad/optim/schedule.hpp"

namespace metagrad::learn {

/// What the trainer needs of a model: an nn Module (parameters, state_dict, load_state_dict,
/// train/eval) that maps a batch of inputs to logits.
template <class M, class T>
concept TrainableModel = requires(M& m, const M& cm, const NamedTensors<T>& state, const Tensor<T>& x) {
  { cm.parameters() } -> std::convertible_to<std::vector<Tensor<T>>>;
  { cm.state_dict() } -> std::convertible_to<NamedTensors<T>>;
  m.load_state_dict(state);
  m.train(true);
  m.eval();
  { m(x) } -> std::convertible_to<Tensor<T>>;
};

/// A loss: (model, batch) -> a scalar tensor to minimize. Losses may also have
/// on_epoch(epoch, epochs), which the trainer calls before each epoch (counted from 0), and
/// on_step(progress), called before each batch with the fraction of training done, in [0, 1)
/// ((epoch + batch / batches) / epochs), for schedules that move every step.
template <class L, class M, class T>
concept LossFor = requires(L& loss, M& model, const Batch<T>& b) {
  { loss(model, b) } -> std::convertible_to<Tensor<T>>;
};

/// An in-place optimizer (SGD, Adam, AdamW).
template <class O>
concept StepOptimizer = requires(O& o, double lr) {
  o.zero_grad();
  o.step();
  { o.lr() } -> std::convertible_to<double>;
  o.set_lr(lr);
};

struct TrainerOptions {
  int epochs = 10;
  std::int64_t batch_size = 64;
  /// Stop after this many epochs in a row without a new best; 0: never stop early.
  int patience = 0;
  /// The validation metric the best state is chosen on ("valid_worst_group_acc", "valid_acc",
  /// "valid_macro_acc", ...). Higher is better, except for names ending in "loss".
  std::string select_on = "valid_worst_group_acc";
  /// A new best must beat the old one by more than this.
  double min_delta = 0;
  /// The batch order of epoch e depends only on (seed, e).
  std::uint64_t seed = 0;
  /// Wall-clock seconds for the whole fit; 0: none. An epoch is not started when, at the pace so
  /// far, it would end past the budget (the first epoch always runs).
  double time_budget_s = 0;
  std::int64_t eval_batch_size = 512;
  bool drop_last = false;
  /// A factor of the optimizer's initial learning rate per epoch (counted from 0), e.g.
  /// multistep_decay({100, 150}) as robust_mlx; none: the rate is left alone.
  std::optional<Schedule> lr_schedule{};
  /// One line per epoch on stdout (or through TrainerHooks::print).
  bool progress = true;
  /// Put at the start of every progress line ("ibp_ex eps=2 seed 0").
  std::string label{};
  /// If set, every new best state is also saved here as safetensors (atomically), with the epoch
  /// and the score in its metadata.
  std::filesystem::path checkpoint{};
};

/// One epoch: mean training loss over its examples, the validation metrics, seconds since fit began.
struct EpochRecord {
  int epoch = 0;  // counted from 1
  double train_loss = 0;
  Metrics valid;
  double score = 0;  // valid[select_on]
  bool improved = false;
  double elapsed_s = 0;
  double lr = 0;
};

struct History {
  std::vector<EpochRecord> epochs;
  /// The epoch (from 1) whose state the model holds after fit; 0 if no epoch gave a usable score
  /// (then the model is back in its initial state).
  int best_epoch = 0;
  double best_score = std::nan("");
  Metrics best_valid;
  std::string stop_reason;  // "epochs", "patience", "time budget", "non-finite loss"
  double elapsed_s = 0;
  double seconds_per_epoch() const { return epochs.empty() ? 0.0 : elapsed_s / static_cast<double>(epochs.size()); }
};

/// Optional callbacks: a replacement for the validation pass (given the epoch, from 1), a hook after
/// each epoch, and where progress lines go.
struct TrainerHooks {
  std::function<Metrics(int epoch)> evaluate;
  std::function<void(const EpochRecord&)> on_epoch_end;
  std::function<void(const std::string&)> print;
};

template <Floating T>
class Trainer {
 public:
  explicit Trainer(TrainerOptions options = {}, TrainerHooks hooks = {})
      : options_(std::move(options)), hooks_(std::move(hooks)) {
    constexpr const char* op = "Trainer";
    check(options_.epochs > 0, op, "epochs must be > 0, got ", options_.epochs);
    check(options_.batch_size > 0, op, "batch_size must be > 0, got ", options_.batch_size);
    check(options_.eval_batch_size > 0, op, "eval_batch_size must be > 0, got ", options_.eval_batch_size);
    check(options_.patience >= 0, op, "patience must be >= 0, got ", options_.patience);
    check(std::isfinite(options_.time_budget_s) && options_.time_budget_s >= 0, op, "time_budget_s must be >= 0, got ",
          options_.time_budget_s);
    check(!options_.select_on.empty(), op, "select_on names no metric");
  }

  const TrainerOptions& options() const { return options_; }
  TrainerHooks& hooks() { return hooks_; }

  /// Trains `model` with `optimizer` on `loss` over `train`, selecting on `valid` (groups: one id
  /// per example; undefined: group = label). Returns the history; the model holds the best state.
  template <class M, class Opt, class L>
    requires TrainableModel<M, T> && StepOptimizer<Opt> && LossFor<L, M, T>
  History fit(M& model, Opt& optimizer, L& loss, const data::Dataset<T>& train, const data::Dataset<T>& valid,
              const IndexTensor& train_groups = {}, const IndexTensor& valid_groups = {}) {
    return fit(model, optimizer, loss, [&](int) -> const data::Dataset<T>& { return train; }, valid, train_groups,
               valid_groups);
  }

  /// As fit, with the training set of each epoch (from 0) made by `train_for_epoch`: for data whose
  /// random parts are drawn afresh every epoch, as robust_mlx's Decoy-MNIST is.
  template <class M, class Opt, class L, class Source>
    requires TrainableModel<M, T> && StepOptimizer<Opt> && LossFor<L, M, T> &&
             std::invocable<Source&, int>
  History fit(M& model, Opt& optimizer, L& loss, Source&& train_for_epoch, const data::Dataset<T>& valid,
              const IndexTensor& train_groups = {}, const IndexTensor& valid_groups = {}) {
    constexpr const char* op = "Trainer::fit";
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    const auto since_start = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
    if (!hooks_.evaluate) valid.validate(op);
    const bool minimize = options_.select_on.ends_with("loss");
    const double base_lr = optimizer.lr();
    const int epochs = options_.epochs;

    History h;
    StateSnapshot<T> best(model, "Trainer");  // the initial state, until an epoch gives a usable score
    int since_best = 0;
    for (int e = 0; e < epochs; ++e) {
      if (options_.lr_schedule) optimizer.set_lr(base_lr * (*options_.lr_schedule)(e));
      if constexpr (requires { loss.on_epoch(e, epochs); }) loss.on_epoch(e, epochs);
      const data::Dataset<T>& train = train_for_epoch(e);
      train.validate(op);
      if (train_groups.defined())
        check(train_groups.dim() == 1 && train_groups.numel() == train.size(), op, "train groups of shape ",
              train_groups.shape(), " do not match ", train.size(), " training examples");

      // ---- one pass over the training set ----
      model.train(true);
      const data::Loader<data::Dataset<T>> loader(train, options_.batch_size, options_.seed, true,
                                                  options_.drop_last);
      const auto batches = loader.epoch(e);
      double loss_sum = 0;
      std::int64_t seen = 0;
      bool finite = true;
      for (std::int64_t b = 0; b < batches.size() && finite; ++b) {
        const auto index = batches.indices(b);
        data::Dataset<T> part = batches.batch(b);
        Batch<T> batch{std::move(part.inputs), std::move(part.labels), std::move(part.masks), {}};
        if (train_groups.defined()) batch.group = data::take_rows(train_groups, index, op);
        if constexpr (requires { loss.on_step(0.0); })
          loss.on_step((static_cast<double>(e) + static_cast<double>(b) / static_cast<double>(batches.size())) /
                       static_cast<double>(epochs));
        optimizer.zero_grad();
        const Tensor<T> l = loss(model, batch);
        check(l.defined() && l.numel() == 1, op, "the loss must return a scalar, got ",
              l.defined() ? l.shape() : Shape{});
        const double value = static_cast<double>(l.item());
        if (!std::isfinite(value)) {
          finite = false;  // no step on a NaN/inf loss: the parameters stay usable
          break;
        }
        backward(l);
        optimizer.step();
        loss_sum += value * static_cast<double>(index.size());
        seen += static_cast<std::int64_t>(index.size());
      }
      optimizer.zero_grad();  // drop the last batch's gradients (memory, and no stale .grad())
      model.eval();

      // ---- validation and selection ----
      EpochRecord rec;
      rec.epoch = e + 1;
      rec.lr = optimizer.lr();
      rec.train_loss = seen > 0 ? loss_sum / static_cast<double>(seen) : std::nan("");
      rec.valid = hooks_.evaluate ? hooks_.evaluate(e + 1)
                                  : evaluate(model, valid, options_.eval_batch_size, valid_groups).metrics("valid_");
      rec.score = rec.valid.at(options_.select_on);
      const bool usable = std::isfinite(rec.score);
      rec.improved = usable && (h.best_epoch == 0 || (minimize ? rec.score < h.best_score - options_.min_delta
                                                               : rec.score > h.best_score + options_.min_delta));
      if (rec.improved) {
        best.take(model);
        h.best_epoch = rec.epoch;
        h.best_score = rec.score;
        h.best_valid = rec.valid;
        since_best = 0;
        if (!options_.checkpoint.empty())
          io::save_safetensors(options_.checkpoint, best.named(),
                               {{"epoch", std::to_string(rec.epoch)},
                                {"select_on", options_.select_on},
                                {"score", std::to_string(rec.score)}});
      } else {
        ++since_best;
      }
      rec.elapsed_s = since_start();
      h.epochs.push_back(rec);
      if (options_.progress) print_line(rec, epochs, !finite);
      if (hooks_.on_epoch_end) hooks_.on_epoch_end(rec);

      // ---- stop? ----
      if (!finite) {
        h.stop_reason = "non-finite loss";
        break;
      }
      if (options_.patience > 0 && since_best >= options_.patience) {
        h.stop_reason = "patience";
        break;
      }
      const double per_epoch = rec.elapsed_s / static_cast<double>(e + 1);
      if (e + 1 < epochs && options_.time_budget_s > 0 && rec.elapsed_s + per_epoch > options_.time_budget_s) {
        h.stop_reason = "time budget";
        break;
      }
    }
    if (h.stop_reason.empty()) h.stop_reason = "epochs";
    model.load_state_dict(best.named());
    if (options_.lr_schedule) optimizer.set_lr(base_lr);
    h.elapsed_s = since_start();
    if (options_.progress)
      emit(prefix() + "best epoch " + std::to_string(h.best_epoch) + " (" + options_.select_on + " " +
           fixed(h.best_score) + "), stopped: " + h.stop_reason + ", " + fixed(h.elapsed_s, 1) + " s");
    return h;
  }

 private:
  static std::string fixed(double v, int digits = 4) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
  }
  std::string prefix() const { return options_.label.empty() ? std::string() : options_.label + "  "; }

  void emit(const std::string& line) const {
    if (hooks_.print) {
      hooks_.print(line);
    } else {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    }
  }

  void print_line(const EpochRecord& r, int epochs, bool nonfinite) const {
    char head[64];
    std::snprintf(head, sizeof head, "epoch %3d/%d  loss %.4f", r.epoch, epochs, r.train_loss);
    std::string line = prefix() + head + "  valid:";
    for (const auto& [name, v] : r.valid) {
      const std::string shown = name.starts_with("valid_") ? name.substr(6) : name;
      line += " " + shown + " " + fixed(v);
    }
    if (r.improved) line += " *";
    if (nonfinite) line += "  (non-finite loss: stopping)";
    const double per_epoch = r.elapsed_s / r.epoch;
    char tail[96];
    std::snprintf(tail, sizeof tail, "  %.2f s/epoch  %.1f s  ETA %.0f s", per_epoch, r.elapsed_s,
                  per_epoch * (epochs - r.epoch));
    emit(line + tail);
  }

  TrainerOptions options_;
  TrainerHooks hooks_;
};

}  // namespace metagrad::learn
