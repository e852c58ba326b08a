// SPDX-License-Identifier: MIT
// The SMaT experiment shared by the text (09, 10) and image (13) examples, which differ only in
// their task: train a teacher on its split; relabel the student pool, student-valid and test
// splits with the teacher's predictions; then, per seed and student-set size N, train a student of
// the same architecture under each condition from the same initial weights:
//   none                   β = 0 (predictions only)
//   attention_all/_last    static attention explainers, β = 5
//   gradient_norm, gradient_x_input, integrated_gradients   β = 0.2
//   smat                   the teacher explainer's head weights λ = sparsemax(φ) meta-learned, β = 5
// Each student stops early on student-valid simulability (its patience) and is measured once on
// test: simulability (agreement with the teacher), its bootstrap, and, where gold rationales
// exist, the plausibility of the teacher explanation it learned from. Writes results.json
// (../shared/RESULTS.md), simulability_vs_n.png, head_weights.png, plausibility.png (with gold
// rationales) and the task's picture of the explanations.
//
// A run at the paper's scale takes hours: with --resume every finished student is kept under
// --out (run_store.hpp), so a stopped run picks up where it was, and --shard I/K splits the students
// between K processes (each then stops without results; a last run with --resume writes them).
//
// A Task holds the splits and says how its model reads them:
//   using Data (size(), subset(rows), labels), Model, Forward (the Student's forward: logits and
//   the learned explainer's logits);
//   name, source, teacher_train, pool, valid, test, test_gold ([N, S], undefined: none);
//   Model make_model(const Config&, Generator&) const;
//   Tensor<T> logits(Model&, const Data&) const;
//   Tensor<T> head_scores(Model&, const Data&) const       [B, L·H, S] over the explained positions;
//   Tensor<T> explanation_mask(const Data&) const          [B, S], undefined: no padding;
//   Tensor<T> static_scores(StaticExplainer, Model&, const Data&) const   raw scores [B, S];
//   Data relabelled(const Data&, const std::vector<std::int64_t>&) const;
//   std::string sizes() const, Json data_json() const      what the log and results.json say of it;
//   void write_explanations(out, shown test rows (teacher labels), {condition: distribution [n, S]},
//                           Results&) const.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "metagrad/io/safetensors.hpp"
#include "metagrad/backend/threads.hpp"
#include "metagrad/io/plot.hpp"
#include "metagrad/learn/metrics.hpp"
#include "metagrad/learn/plausibility.hpp"
#include "metagrad/learn/simulation.hpp"
#include "metagrad/learn/static_explainers.hpp"
#include "metagrad/learn/student_training.hpp"
#include "metagrad/learn/run_store.hpp"
#include "metagrad/optim/adam.hpp"

namespace metagrad::examples::smat {

using T = float;
namespace ml = metagrad::learn;

struct Config {
  int seeds = 5;
  std::vector<std::int64_t> ns{125, 250, 500};
  std::vector<std::string> conditions{"none",          "attention_all",    "attention_last",      "gradient_norm",
                                      "gradient_x_input", "integrated_gradients", "smat"};
  std::int64_t d_model = 64, heads = 4, layers = 2, d_ff = 128;
  // Students start from scratch here (the paper's are pretrained), and at the paper's SGD lr 5e-3
  // they never leave chance; each task states how its architecture and lr were chosen.
  bool pre_norm = true;
  int teacher_epochs = 10;
  double teacher_lr = 1e-3;
  double student_lr = 0.5;
  int max_epochs = 150, patience = 20;
  // Epochs every student runs before its patience may stop it (0: none; see StudentFitOptions).
  int min_epochs = 0;
  std::int64_t batch = 32;
  double meta_lr = 5e-4;
  std::int64_t unroll_steps = 1;
  // Students from scratch (0), or from a body pretrained for this many epochs by the task's
  // self-supervised objective (text: masked tokens on the teacher split's texts, labels unused), as
  // the paper's students start from pretrained ELECTRA / ViT. The teacher is always from scratch.
  int pretrain_epochs = 0;
  int threads = 1;
  // How this process runs, not what the experiment is (so not in json()): see run_store.hpp.
  bool resume = false;
  std::string shard = "0/1";
  int shown_examples = 12;
  std::string student_lr_selection =
      "pre-LN and lr 0.5 chosen on student-valid simulability of the no-explanation student (N = 125, seeds "
      "0-1) among pre/post-LN x lr {0.1, 0.2, 0.3, 0.5, 0.7, 1.0}; the paper's 5e-3 suits its pretrained "
      "students, and from scratch stays at chance";

  Json json() const {
    Json j = {{"seeds", seeds},
            {"ns", ns},
            {"conditions", conditions},
            {"teacher_and_student",
             {{"layers", layers}, {"heads", heads}, {"d_model", d_model}, {"d_ff", d_ff}, {"pre_norm", pre_norm}}},
            {"teacher_optimizer", "AdamW"},
            {"teacher_lr", teacher_lr},
            {"teacher_epochs", teacher_epochs},
            {"student_optimizer", "SGD, global-norm clip 5.0, weight decay 0.01"},
            {"student_lr", student_lr},
            {"student_lr_selection", student_lr_selection},
            {"student_max_epochs", max_epochs},
            {"patience", patience},
            {"batch", batch},
            {"meta_optimizer", "AdamW (weight decay 1e-4)"},
            {"meta_lr", meta_lr},
            {"unroll_steps", unroll_steps},
            {"student_init", pretrain_epochs > 0 ? Json{{"pretrained", "masked tokens on the teacher split's texts (labels "
                                                                       "unused), AdamW 1e-3, 80/10/10 corruption of 15 %, "
                                                                       "mask = <unk>"},
                                                        {"epochs", pretrain_epochs}}
                                                  : Json("from scratch")},
            {"threads", threads}};
    // Only when set, so that the runs made before the option existed keep their fingerprint.
    if (min_epochs > 0) j["student_min_epochs"] = min_epochs;
    return j;
  }
};

/// What --quick shrinks in every task: one seed, N = 125, a narrower model and 3 teacher epochs
/// (the example then sets its own student epochs).
inline void shrink_for_quick(Config& cfg) {
  cfg.seeds = 1;
  cfg.ns = {125};
  cfg.d_model = 32;
  cfg.d_ff = 64;
  cfg.teacher_epochs = 3;
}

inline void add_options(CLI::App& app, Config& cfg) {
  app.add_option("--seeds", cfg.seeds, "seeds (0, 1, ...)")->check(CLI::PositiveNumber);
  app.add_option("--ns", cfg.ns, "student training-set sizes");
  app.add_option("--conditions", cfg.conditions, "conditions to run")->delimiter(',');
  app.add_option("--d-model", cfg.d_model, "model width")->check(CLI::PositiveNumber);
  app.add_flag("--pre-norm,!--post-norm", cfg.pre_norm, "pre-LN Transformer layers (the default; --post-norm: post-LN as in BERT)");
  app.add_option("--batch", cfg.batch, "student and teacher batch size")->check(CLI::PositiveNumber);
  app.add_option("--teacher-epochs", cfg.teacher_epochs, "teacher epochs")->check(CLI::PositiveNumber);
  app.add_option("--student-lr", cfg.student_lr, "the student's SGD learning rate")->check(CLI::PositiveNumber);
  app.add_option("--max-epochs", cfg.max_epochs, "student epochs at most")->check(CLI::PositiveNumber);
  app.add_option("--patience", cfg.patience, "early-stopping patience (epochs)")->check(CLI::PositiveNumber);
  app.add_option("--min-epochs", cfg.min_epochs, "epochs every student runs before its patience may stop it")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--meta-lr", cfg.meta_lr, "AdamW learning rate of the teacher explainer")->check(CLI::PositiveNumber);
  app.add_option("--unroll-steps", cfg.unroll_steps, "K student steps unrolled per meta step")->check(CLI::PositiveNumber);
  app.add_option("--pretrain-epochs", cfg.pretrain_epochs,
                 "students start from a body pretrained this many epochs by the task's self-supervised objective "
                 "(text: masked tokens); 0: from scratch")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", cfg.threads, "CPU threads")->check(CLI::PositiveNumber);
  app.add_flag("--resume", cfg.resume,
               "keep every finished student (and the teacher) under --out/units/ and skip those already there");
  app.add_option("--shard", cfg.shard,
                 "I/K: train only students i with i mod K == I, then stop (implies --resume; a last run with "
                 "--resume and no --shard writes the results)");
}

inline std::vector<std::int64_t> rows_upto(std::int64_t n) {
  std::vector<std::int64_t> r(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) r[static_cast<std::size_t>(i)] = i;
  return r;
}

/// f(rows of d) over d in chunks, concatenated along dim 0.
template <class D, class F>
Tensor<T> in_chunks(const D& d, F&& f, std::int64_t chunk = 256) {
  std::vector<Tensor<T>> parts;
  for (std::int64_t s = 0; s < d.size(); s += chunk) {
    std::vector<std::int64_t> rows;
    for (std::int64_t i = s; i < std::min(s + chunk, d.size()); ++i) rows.push_back(i);
    parts.push_back(f(d.subset(rows)));
  }
  return parts.size() == 1 ? parts[0] : concat(parts, 0);
}

template <class Task>
double accuracy_of(const Task& task, typename Task::Model& model, const typename Task::Data& d) {
  model.eval();
  const auto pred = ml::predict_in_batches(d, [&](const typename Task::Data& b) { return task.logits(model, b); });
  return ml::agreement(pred, d.labels.values());
}

/// Trains the teacher with AdamW on its split; prints a line per epoch.
template <class Task>
void train_teacher(typename Task::Model& teacher, const Task& task, const Config& cfg) {
  AdamW<T> opt(teacher.parameters(), {.lr = cfg.teacher_lr, .weight_decay = 0.01});
  data::Loader loader(task.teacher_train, cfg.batch, 12345);
  Progress progress(cfg.teacher_epochs);
  for (int e = 1; e <= cfg.teacher_epochs; ++e) {
    teacher.train();
    double loss_sum = 0;
    for (const auto& b : loader.epoch(e)) {
      opt.zero_grad();
      const auto loss = cross_entropy(task.logits(teacher, b), b.labels);
      backward(loss);
      clip_grad_norm_(teacher.parameters(), 1.0);
      opt.step();
      loss_sum += static_cast<double>(loss.item());
    }
    progress.print_epoch(e, formatted("teacher loss %.4f  valid acc %.4f", loss_sum / static_cast<double>(loader.batches_per_epoch()),
                                      accuracy_of(task, teacher, task.valid)));
  }
  teacher.eval();
}

/// What one student run gives.
struct RunOutcome {
  double simulability = 0, valid_simulability = 0, boot_mean = 0, boot_low = 0, boot_high = 0;
  double plausibility = std::nan("");  // of the teacher explanation it learned from
  int best_epoch = 0, epochs = 0;
  double seconds = 0;                // its training and test, wall clock
  std::vector<double> head_weights;  // smat: the learned λ
  std::vector<double> head_logits;   // smat: the learned φ (the figures redraw its explanations)

  Json json() const {
    return {{"simulability", simulability}, {"valid_simulability", valid_simulability}, {"boot_mean", boot_mean},
            {"boot_low", boot_low}, {"boot_high", boot_high},
            {"plausibility", std::isnan(plausibility) ? Json(nullptr) : Json(plausibility)}, {"best_epoch", best_epoch},
            {"epochs", epochs}, {"seconds", seconds}, {"head_weights", head_weights}, {"head_logits", head_logits}};
  }
  static RunOutcome from_json(const Json& j) {
    RunOutcome r;
    r.simulability = j.at("simulability").get<double>();
    r.valid_simulability = j.at("valid_simulability").get<double>();
    r.boot_mean = j.at("boot_mean").get<double>();
    r.boot_low = j.at("boot_low").get<double>();
    r.boot_high = j.at("boot_high").get<double>();
    r.plausibility = j.at("plausibility").is_null() ? std::nan("") : j.at("plausibility").get<double>();
    r.best_epoch = j.at("best_epoch").get<int>();
    r.epochs = j.at("epochs").get<int>();
    r.seconds = j.at("seconds").get<double>();
    r.head_weights = j.at("head_weights").get<std::vector<double>>();
    r.head_logits = j.at("head_logits").get<std::vector<double>>();
    return r;
  }
};

/// Every setting a student's result depends on. --seeds, --ns and --conditions only choose which
/// students run, so they are left out; --threads stays in (threaded kernels may sum in another
/// order, and a sweep should not mix the two).
template <class Task>
Json fingerprint_of(const Task& task, const Config& cfg, bool quick, const std::string& example, const std::string& data_note) {
  Json f = cfg.json();
  for (const char* k : {"seeds", "ns", "conditions"}) f.erase(k);
  // Students from scratch are what every run was before --pretrain-epochs existed: leaving the key
  // out keeps the students finished then (the 256-token sweep's) valid for --resume.
  if (cfg.pretrain_epochs == 0) f.erase("student_init");
  f["example"] = example;
  f["quick"] = quick;
  f["data_note"] = data_note;
  f["sizes"] = task.sizes();
  f["data"] = task.data_json();
  return f;
}

template <class Task>
int run_experiment(const Task& task, const Config& cfg, const CommonOptions& common, const std::string& example,
                   const std::string& data_note) {
  using Data = typename Task::Data;
  using Model = typename Task::Model;
  const auto t_start = Clock::now();
  set_num_threads(cfg.threads);
  const std::filesystem::path out = common.out_dir;
  std::filesystem::create_directories(out);
  for (const auto& c : cfg.conditions)
    check(c == "none" || c == "smat" || (ml::static_explainer_named(c), true), example.c_str(), "unknown condition ", c);
  const std::int64_t pool_max = *std::max_element(cfg.ns.begin(), cfg.ns.end());
  check(pool_max <= task.pool.size(), example.c_str(), "N = ", pool_max, " exceeds the student pool of ", task.pool.size());
  const bool has_gold = task.test_gold.defined();
  std::printf("%s: teacher split %lld, student pool %lld, student valid %lld, test %lld, %s\n", example.c_str(),
              static_cast<long long>(task.teacher_train.size()), static_cast<long long>(task.pool.size()),
              static_cast<long long>(task.valid.size()), static_cast<long long>(task.test.size()), task.sizes().c_str());

  const ml::Shard shard = ml::parse_shard(cfg.shard);
  std::optional<ml::RunStore> store;
  if (cfg.resume || !shard.whole()) {
    store.emplace(out, fingerprint_of(task, cfg, common.quick, example, data_note));
    std::printf("finished students are kept in %s (shard %d/%d)\n", store->dir().c_str(), shard.index, shard.count);
  }

  // ---- the teacher (kept beside the students with --resume: every shard needs the same one) ----
  Generator teacher_gen(1000);
  Model teacher = task.make_model(cfg, teacher_gen);
  const auto teacher_file = store ? store->dir() / "teacher.safetensors" : std::filesystem::path();
  if (store && std::filesystem::exists(teacher_file)) {
    const auto saved = io::load_safetensors(teacher_file);
    const auto it = saved.metadata.find("fingerprint");
    check(it != saved.metadata.end() && it->second == store->fingerprint().dump(), example.c_str(), "'",
          teacher_file.string(), "' was trained under other settings; delete it");
    teacher.load_state_dict(saved.named<T>());
    teacher.eval();
    std::printf("teacher loaded from %s\n", teacher_file.c_str());
  } else {
    train_teacher(teacher, task, cfg);
    if (store) io::save_safetensors(teacher_file, teacher.state_dict(), {{"fingerprint", store->fingerprint().dump()}});
  }
  const double teacher_test_acc = accuracy_of(task, teacher, task.test);
  std::printf("teacher test accuracy %.4f\n", teacher_test_acc);
  auto teacher_pred = [&](const Data& d) {
    return ml::predict_in_batches(d, [&](const Data& b) { return task.logits(teacher, b); });
  };
  const Data pool = task.relabelled(task.pool, teacher_pred(task.pool));
  const Data valid = task.relabelled(task.valid, teacher_pred(task.valid));
  const auto test_pred = teacher_pred(task.test);
  const Data test = task.relabelled(task.test, test_pred);
  // The simulability of a student that always answers the teacher's most frequent test label: a
  // student at this figure has learnt the prior only, and no explanation can have helped it.
  std::map<std::int64_t, std::int64_t> label_counts;
  for (const auto label : test_pred) ++label_counts[label];
  std::int64_t most_frequent = 0;
  for (const auto& [label, count] : label_counts) most_frequent = std::max(most_frequent, count);
  const double majority_rate = test_pred.empty() ? 0.0 : static_cast<double>(most_frequent) / static_cast<double>(test_pred.size());
  std::printf("always the teacher's most frequent test label: simulability %.4f\n", majority_rate);
  const Tensor<T> pool_mask = task.explanation_mask(pool), test_mask = task.explanation_mask(test);

  // ---- the teacher's explanations, computed once: it is fixed ----
  std::map<std::string, Tensor<T>> pool_logits, test_scores;
  for (const auto& c : cfg.conditions) {
    if (c == "none" || c == "smat") continue;
    const auto kind = ml::static_explainer_named(c);
    pool_logits[c] = ml::static_explanation_logits(
        kind, in_chunks(pool, [&](const Data& b) { return task.static_scores(kind, teacher, b); }, 64), pool_mask);
    test_scores[c] = in_chunks(test, [&](const Data& b) { return task.static_scores(kind, teacher, b); }, 64);
  }
  auto head_scores_of = [&](const Data& d) {
    return in_chunks(d, [&](const Data& b) {
      NoGradGuard no_grad;
      return task.head_scores(teacher, b);
    });
  };
  const Tensor<T> pool_heads = head_scores_of(pool), test_heads = head_scores_of(test);
  const std::int64_t n_heads = cfg.layers * cfg.heads;

  // ---- the students' starting point: from scratch, or one pretrained body (kept with --resume) ----
  std::optional<NamedTensors<T>> student_body;
  if (cfg.pretrain_epochs > 0) {
    if constexpr (requires { task.pretrain_student_body(cfg); }) {
      const auto body_file = store ? store->dir() / "student_body.safetensors" : std::filesystem::path();
      if (store && std::filesystem::exists(body_file)) {
        const auto saved = io::load_safetensors(body_file);
        const auto it = saved.metadata.find("fingerprint");
        check(it != saved.metadata.end() && it->second == store->fingerprint().dump(), example.c_str(), "'",
              body_file.string(), "' was pretrained under other settings; delete it");
        student_body = saved.named<T>();
        std::printf("pretrained student body loaded from %s\n", body_file.c_str());
      } else {
        student_body = task.pretrain_student_body(cfg);
        if (store) io::save_safetensors(body_file, *student_body, {{"fingerprint", store->fingerprint().dump()}});
      }
    } else {
      fail(example.c_str(), "--pretrain-epochs: this task has no pretraining objective");
    }
  }

  // ---- students ----
  std::vector<std::uint64_t> seeds;
  for (int s = 0; s < cfg.seeds; ++s) seeds.push_back(static_cast<std::uint64_t>(s));
  // outcomes[condition][n index][seed]
  std::map<std::string, std::vector<std::vector<RunOutcome>>> outcomes;
  for (const auto& c : cfg.conditions) outcomes[c].assign(cfg.ns.size(), {});
  auto unit_key = [&](std::uint64_t seed, std::int64_t n, const std::string& c) {
    return formatted("seed%llu_n%lld_%s", static_cast<unsigned long long>(seed), static_cast<long long>(n), c.c_str());
  };
  // Which students this process trains: not yet in the store, and its shard's.
  std::map<std::string, RunOutcome> stored;
  int total_runs = 0, elsewhere = 0;
  {
    std::size_t unit = 0;
    for (std::uint64_t seed : seeds)
      for (auto n : cfg.ns)
        for (const auto& c : cfg.conditions) {
          const auto key = unit_key(seed, n, c);
          if (store)
            if (auto saved = store->load(key)) {
              stored[key] = RunOutcome::from_json(*saved);
              ++unit;
              continue;
            }
          (shard.owns(unit++) ? total_runs : elsewhere) += 1;
        }
  }
  if (store)
    std::printf("%zu students already finished, %d to train here, %d left to other shards\n", stored.size(), total_runs,
                elsewhere);
  int runs_done = 0;
  const auto t_students = Clock::now();
  LearnedAttentionExplainer<T> shown_explainer(cfg.layers, cfg.heads);  // smat's at the smallest N, seed 0
  bool have_shown = false;
  std::size_t unit = 0;
  for (std::uint64_t seed : seeds) {
    const auto order = data::permutation(pool.size(), 777 + seed);
    for (std::size_t ni = 0; ni < cfg.ns.size(); ++ni) {
      const std::int64_t n = cfg.ns[ni];
      const std::vector<std::int64_t> rows(order.begin(), order.begin() + n);
      const Data train = pool.subset(rows);
      const Tensor<T> heads_train = data::take_rows(pool_heads, rows);
      const Tensor<T> mask_train = pool_mask.defined() ? data::take_rows(pool_mask, rows) : Tensor<T>();
      for (const auto& c : cfg.conditions) {
        const auto key = unit_key(seed, n, c);
        const bool owned = shard.owns(unit++);
        if (const auto it = stored.find(key); it != stored.end()) {
          if (c == "smat" && !have_shown && ni == 0) {
            const std::vector<T> phi(it->second.head_logits.begin(), it->second.head_logits.end());
            shown_explainer.head_logits = from_vector<T>(phi, shown_explainer.head_logits.shape());
            have_shown = true;
          }
          outcomes[c][ni].push_back(it->second);
          continue;
        }
        if (!owned) continue;
        Generator init(seed * 7919 + 17);
        Model model = task.make_model(cfg, init);
        if (student_body) model.load_state_dict(*student_body, /*strict=*/false);  // the head stays per seed
        LearnedAttentionExplainer<T> student_explainer(cfg.layers, cfg.heads);
        student_explainer.head_logits.requires_grad_();
        ml::Student<T, Model, LearnedAttentionExplainer<T>, typename Task::Forward> student(model, student_explainer, {});
        LearnedAttentionExplainer<T> teacher_explainer(cfg.layers, cfg.heads);
        ml::TeacherExplanationFn<T> teacher_explanation;
        double beta = 0;
        Tensor<T> train_logits;
        if (c == "smat") {
          beta = 5.0;
          teacher_explanation = [&](std::span<const std::int64_t> r) {
            return teacher_explainer.explanation_logits(data::take_rows(heads_train, r),
                                                        mask_train.defined() ? data::take_rows(mask_train, r) : Tensor<T>());
          };
        } else if (c != "none") {
          beta = ml::explainer_beta(ml::static_explainer_named(c));
          train_logits = data::take_rows(pool_logits[c], rows);
          teacher_explanation = [&](std::span<const std::int64_t> r) { return data::take_rows(train_logits, r); };
        }
        ml::StudentFitOptions fo{.max_epochs = cfg.max_epochs,
                                 .patience = cfg.patience,
                                 .min_epochs = cfg.min_epochs,
                                 .batch_size = cfg.batch,
                                 .seed = seed,
                                 .smat = {.beta = beta, .student_lr = cfg.student_lr, .unroll_steps = cfg.unroll_steps},
                                 .meta_lr = cfg.meta_lr};
        const double elapsed_before = seconds_since(t_students);
        const auto t_run = Clock::now();
        auto on_epoch = [&](const ml::EpochLog& log) {
          if (log.epoch % 5 != 0 && log.epoch != 1) return;
          const double run_s = seconds_since(t_run);
          // The pace so far: finished runs, plus this one's share of its epochs.
          const double done = runs_done + std::min(0.9, static_cast<double>(log.epoch) / cfg.max_epochs);
          const double eta = done > 0 ? (elapsed_before + run_s) / done * (total_runs - done) : 0;
          std::printf("[run %d/%d] seed %llu N %lld %-20s epoch %3d  loss %.4f  valid sim %.4f%s  %6.1f s  ETA %.0f s\n",
                      runs_done + 1, total_runs, static_cast<unsigned long long>(seed), static_cast<long long>(n),
                      c.c_str(), log.epoch, log.train_loss, log.valid_simulability,
                      c == "smat" ? formatted("  meta outer %.4f", log.meta_outer_loss).c_str() : "",
                      seconds_since(t_start), eta);
          std::fflush(stdout);
        };
        const auto fit = ml::fit_student<T>(student, train, valid, teacher_explanation, fo,
                                            c == "smat" ? &teacher_explainer : nullptr, on_epoch);
        RunOutcome r;
        const auto pred = ml::predict_in_batches(test, [&](const Data& b) { return task.logits(model, b); });
        r.simulability = ml::agreement(pred, test.labels.values());
        const auto boot = ml::bootstrap_agreement(pred, test.labels.values(), seed);
        r.boot_mean = boot.mean;
        r.boot_low = boot.low;
        r.boot_high = boot.high;
        r.valid_simulability = fit.best_valid_simulability;
        r.best_epoch = fit.best_epoch;
        r.epochs = fit.epochs_run;
        if (c == "smat") {
          const auto lambda = teacher_explainer.head_weights().detach();
          r.head_weights.assign(lambda.data(), lambda.data() + lambda.numel());
          const auto phi = teacher_explainer.head_logits.detach();  // tensors are always contiguous
          r.head_logits.assign(phi.data(), phi.data() + phi.numel());
          if (has_gold) {
            NoGradGuard no_grad;
            r.plausibility = ml::plausibility_auc(teacher_explainer.explanation_logits(test_heads, test_mask),
                                                  task.test_gold, test_mask).auc;
          }
          if (!have_shown && ni == 0) {
            shown_explainer.head_logits = clone(teacher_explainer.head_logits.detach());
            have_shown = true;
          }
        } else if (c != "none" && has_gold) {
          r.plausibility = ml::plausibility_auc(test_scores[c], task.test_gold, test_mask).auc;
        }
        ++runs_done;
        std::printf("[run %d/%d] seed %llu N %lld %-20s done: test simulability %.4f (bootstrap %.4f [%.4f, %.4f]), best "
                    "epoch %d of %d, %.1f s\n",
                    runs_done, total_runs, static_cast<unsigned long long>(seed), static_cast<long long>(n), c.c_str(),
                    r.simulability, r.boot_mean, r.boot_low, r.boot_high, r.best_epoch, r.epochs, seconds_since(t_run));
        std::fflush(stdout);
        r.seconds = seconds_since(t_run);
        if (store) store->save(key, r.json());
        outcomes[c][ni].push_back(std::move(r));
      }
    }
  }
  if (elsewhere > 0) {
    std::printf("shard %d/%d done (%.0f s); %d students belong to other shards: when they are done, run again with "
                "--resume and no --shard to write the results\n",
                shard.index, shard.count, seconds_since(t_start), elsewhere);
    return 0;
  }

  // ---- results.json: one row per (condition, N); the smallest N is each method's headline ----
  Json data_fields{{"name", task.name},
                   {"source", task.source},
                   {"n_train", task.pool.size()},
                   {"n_train_note", "the student pool; each student trains on its first N after a per-seed shuffle"},
                   {"n_teacher_train", task.teacher_train.size()},
                   {"n_val", task.valid.size()},
                   {"n_test", task.test.size()}};
  const Json task_fields = task.data_json();
  for (const auto& [k, v] : task_fields.items()) data_fields[k] = v;
  data_fields["note"] = data_note;
  Results results(example, common.quick, "Learning to Scaffold: Optimizing Model Explanations for Teaching (SMaT; Fernandes et al., NeurIPS 2022)",
                  data_fields,
                  seeds,
                  "no hyperparameter is selected: every condition runs at the paper's settings (β, temperatures); each "
                  "student keeps its epoch of best student-valid simulability (early stopping, patience), test measured "
                  "once; the smallest N is each method's headline row (fixed before the run)");
  std::printf("\n%-22s", "simulability (test)");
  for (auto n : cfg.ns) std::printf("  N=%-21lld", static_cast<long long>(n));
  std::printf("  plausibility\n");
  Json table = Json::object();
  for (const auto& c : cfg.conditions) {
    std::printf("%-22s", c.c_str());
    for (std::size_t ni = 0; ni < cfg.ns.size(); ++ni) {
      const auto& rs = outcomes[c][ni];
      auto over = [&](auto get) {
        std::vector<double> v;
        for (const auto& r : rs) v.push_back(get(r));
        return v;
      };
      const auto sim = over([](const RunOutcome& r) { return r.simulability; });
      std::vector<std::pair<std::string, std::vector<double>>> metrics{
          {"simulability", sim},
          {"valid_simulability", over([](const RunOutcome& r) { return r.valid_simulability; })},
          {"bootstrap_simulability", over([](const RunOutcome& r) { return r.boot_mean; })}};
      const bool plaus = !std::isnan(rs.front().plausibility);
      if (plaus) metrics.push_back({"plausibility_auc", over([](const RunOutcome& r) { return r.plausibility; })});
      const double beta = c == "none" ? 0.0 : c == "smat" ? 5.0 : ml::explainer_beta(ml::static_explainer_named(c));
      Json setting{{"n", cfg.ns[ni]}, {"beta", beta}};
      if (c != "none" && c != "smat") setting["temperature"] = ml::explainer_temperature(ml::static_explainer_named(c));
      results.add_row(c, setting, ni == 0, metrics);
      const auto m = ml::median_iqr(sim);
      auto& row = results.doc["rows"].back();
      row["chosen"] = true;
      row["simulability_median"] = m.median;
      row["simulability_q25"] = m.q25;
      row["simulability_q75"] = m.q75;
      Json ci = Json::array();
      for (const auto& r : rs) ci.push_back({r.boot_low, r.boot_high});
      row["bootstrap_ci95"] = ci;
      row["best_epochs"] = over([](const RunOutcome& r) { return static_cast<double>(r.best_epoch); });
      if (c == "smat") {
        Json lambdas = Json::array();
        for (const auto& r : rs) lambdas.push_back(r.head_weights);
        row["head_weights"] = lambdas;
      }
      std::printf("  %.4f [%.4f:%.4f]    ", m.median, m.q25, m.q75);
      if (plaus && ni + 1 == cfg.ns.size()) {
        const auto p = ml::median_iqr(over([](const RunOutcome& r) { return r.plausibility; }));
        std::printf("  %.3f", p.median);
      }
    }
    std::printf("\n");
  }
  results.doc["curve_keys"] = {"n"};
  results.doc["headline"] = {"simulability", "plausibility_auc"};
  results.doc["teacher_test_acc"] = teacher_test_acc;
  results.doc["majority_rate"] = majority_rate;
  {
    double student_s = 0;
    for (const auto& [c, per_n] : outcomes)
      for (const auto& rs : per_n)
        for (const auto& r : rs) student_s += r.seconds;
    // With --resume/--shard, elapsed_s is only the last process's; this is every student's.
    results.doc["students_s_sum"] = student_s;
  }
  results.doc["config"] = cfg.json();
  results.doc["std"] = "sample standard deviation (n - 1) over seeds; the tables report median [q25:q75]";
  results.doc["bootstrap"] = "per run: 500 resamples of half the test set with replacement (bootstrap_eval.py)";
  results.doc["paper_figures_note"] = "no paper figure applies (PAPERS.md section 1: the target is the ordering SMaT >= best static > none)";

  // ---- figures ----
  {
    std::vector<io::LineSeries> series;
    for (const auto& c : cfg.conditions) {
      io::LineSeries s{c, {}, {}, {}};
      for (std::size_t ni = 0; ni < cfg.ns.size(); ++ni) {
        std::vector<double> v;
        for (const auto& r : outcomes[c][ni]) v.push_back(r.simulability);
        const auto m = ml::median_iqr(v);
        s.x.push_back(static_cast<double>(cfg.ns[ni]));
        s.y.push_back(m.median);
        s.err.push_back((m.q75 - m.q25) / 2);
      }
      series.push_back(s);
    }
    io::LineSeries prior{"always the most frequent label", {}, {}, {}};
    for (const auto n : cfg.ns) {
      prior.x.push_back(static_cast<double>(n));
      prior.y.push_back(majority_rate);
    }
    series.push_back(prior);
    io::write_line_chart(out / "simulability_vs_n.png",
                         formatted("Student simulability vs N (%s; median over %zu seeds, bars: ± half the IQR)", task.name.c_str(),
                                   seeds.size()),
                         "student training examples N (log scale)", "test simulability (agreement with teacher)", series,
                         true);
    results.add_figure("simulability_vs_n.png");
  }
  if (std::find(cfg.conditions.begin(), cfg.conditions.end(), "smat") != cfg.conditions.end()) {
    std::vector<std::string> heads;
    for (std::int64_t l = 0; l < cfg.layers; ++l)
      for (std::int64_t h = 0; h < cfg.heads; ++h)
        heads.push_back(formatted("layer %lld head %lld", static_cast<long long>(l + 1), static_cast<long long>(h + 1)));
    std::vector<io::BarSeries> series;
    series.push_back({"uniform start", std::vector<double>(static_cast<std::size_t>(n_heads), 1.0 / static_cast<double>(n_heads)), {}});
    for (std::size_t ni = 0; ni < cfg.ns.size(); ++ni) {
      io::BarSeries s{formatted("SMaT, N = %lld", static_cast<long long>(cfg.ns[ni])), {}, {}};
      const auto& rs = outcomes["smat"][ni];
      for (std::int64_t k = 0; k < n_heads; ++k) {
        std::vector<double> v;
        for (const auto& r : rs) v.push_back(r.head_weights[static_cast<std::size_t>(k)]);
        const auto sm = ml::summarize(v);
        s.mean.push_back(sm.mean);
        s.err.push_back(sm.std);
      }
      series.push_back(s);
    }
    io::write_bar_chart(out / "head_weights.png",
                        formatted("Learned teacher head weights lambda = sparsemax(phi) (%s; mean ± std over seeds)",
                                  task.name.c_str()),
                        "lambda", heads, series);
    results.add_figure("head_weights.png");
  }
  if (has_gold) {
    std::vector<std::string> names;
    io::BarSeries s{"plausibility AUC (test)", {}, {}};
    for (const auto& c : cfg.conditions) {
      if (c == "none") continue;
      std::vector<double> v;
      for (const auto& rs : outcomes[c])
        for (const auto& r : rs) v.push_back(r.plausibility);
      const auto sm = ml::summarize(v);
      names.push_back(c);
      s.mean.push_back(sm.mean);
      s.err.push_back(sm.std);
    }
    if (!names.empty()) {
      io::write_bar_chart(out / "plausibility.png",
                          formatted("Plausibility of the teacher explanations (%s)", task.name.c_str()),
                          "per-example ROC-AUC vs gold rationale (0.5 chance; ± std)", names, {s});
      results.add_figure("plausibility.png");
    }
  }
  {
    // The first test examples with each teacher explanation's distribution; SMaT's from seed 0,
    // smallest N.
    const auto rows = rows_upto(std::min<std::int64_t>(cfg.shown_examples, test.size()));
    const Data shown = test.subset(rows);
    const Tensor<T> shown_mask = test_mask.defined() ? data::take_rows(test_mask, rows) : Tensor<T>();
    std::map<std::string, Tensor<T>> dist;
    NoGradGuard no_grad;
    for (const auto& c : cfg.conditions) {
      if (c == "none") continue;
      if (c == "smat") {
        if (have_shown) dist[c] = softmax(shown_explainer.explanation_logits(data::take_rows(test_heads, rows), shown_mask), 1);
        continue;
      }
      const auto kind = ml::static_explainer_named(c);
      dist[c] = softmax(ml::static_explanation_logits(kind, data::take_rows(test_scores[c], rows), shown_mask), 1);
    }
    task.write_explanations(out, shown, dist, results);
  }
  results.write(out, seconds_since(t_start));
  std::printf("%.0f s in all\n", seconds_since(t_start));
  return 0;
}

}  // namespace metagrad::examples::smat
