// SPDX-License-Identifier: MIT
// Learning per-example weights by hypergradient, in the style of "Learning to Reweight Examples"
// (Ren et al., 2018), on a 10-class problem where 40% of the training labels were flipped.
//
// Every training example i has a weight w_i = 2 σ(s_i) (1 at the start). Each iteration takes a
// batch B and looks one SGD step ahead, θ' = θ - η ∇θ Σ_{i∈B} w_i ℓ_i(θ) / |B|, evaluates the
// cross-entropy of θ' on a small trusted clean set, and moves s_B against the hypergradient
// d clean_loss(θ') / d s_B (meta::unrolled_hypergradient through the one step). The model then
// takes the real step with the new weights. An example whose gradient disagrees with the clean
// set's loses weight: the flipped ones should end far below the clean ones.
// A baseline trains the same model on the same batches with every weight 1.
//   02_reweight_noisy_labels [--quick] [--out DIR] [--seed N] [--epochs N] [--data mnist|fashion-mnist]
// Without --data (or when that data set is not fetched) the data are synthetic Gaussian clusters.
// --out DIR writes DIR/results.json, DIR/test_acc_per_epoch.png and DIR/mean_weight_per_epoch.png. Exits non-zero when the flipped examples do not end with a
// lower mean weight than the clean ones, so ctest runs it (with --quick) as a test.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "common.hpp"
#include "metagrad/backend/threads.hpp"
#include "metagrad/data/mnist.hpp"
#include "metagrad/io/plot.hpp"
#include "metagrad/meta/hypergradient.hpp"
#include "metagrad/nn/functional_call.hpp"
#include "metagrad/nn/mlp.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/ops/view.hpp"

using namespace metagrad;
using namespace metagrad::examples;
using Params = std::vector<Tensor<float>>;

namespace {

struct Config {
  std::uint64_t seed = 1;
  int epochs = 60;
  std::int64_t train = 4000, clean = 100, test = 2000, features = 20, hidden = 256, classes = 10, batch = 100;
  double noise = 0.4;        // fraction of training labels flipped to another class
  double separation = 0.8;   // spread of the class means; the clusters overlap
  double lr = 0.1;           // SGD step of the model (and of the look-ahead)
  double meta_lr = 10.0;     // step on the weight logits s, per unit of batch-mean hypergradient

  void make_quick() {
    epochs = 40;
    train = 2000;
    test = 1000;
  }
  Json json() const {
    return {{"seed", seed},         {"epochs", epochs}, {"train", train},       {"clean", clean},
            {"test", test},         {"features", features}, {"hidden", hidden}, {"classes", classes},
            {"batch", batch},       {"noise", noise},   {"separation", separation}, {"lr", lr},
            {"meta_lr", meta_lr}};
  }
};

struct Data {
  Tensor<float> x;
  IndexTensor y;
};

/// Gaussian clusters: class c has mean μ_c ~ N(0, separation² I), points μ_c + N(0, I).
Data clusters(std::int64_t n, const Tensor<float>& means, Generator& gen) {
  const std::int64_t classes = means.size(0), f = means.size(1);
  Data d{randn<float>({n, f}, gen), IndexTensor::empty({n})};
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t c = static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(classes)));
    d.y.fresh_data()[i] = c;
    for (std::int64_t j = 0; j < f; ++j) d.x.fresh_data()[i * f + j] += means.data()[c * f + j];
  }
  return d;
}

Data take(const Data& d, std::span<const std::int64_t> rows) {
  const std::int64_t n = static_cast<std::int64_t>(rows.size()), f = d.x.size(1);
  Data b{Tensor<float>::empty({n, f}), IndexTensor::empty({n})};
  for (std::int64_t k = 0; k < n; ++k) {
    std::copy_n(d.x.data() + rows[k] * f, f, b.x.fresh_data() + k * f);
    b.y.fresh_data()[k] = d.y.data()[rows[k]];
  }
  return b;
}

double accuracy(const Tensor<float>& logits, const IndexTensor& y) {
  const std::int64_t n = logits.size(0), c = logits.size(1);
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = logits.data() + i * c;
    correct += std::max_element(row, row + c) - row == y.data()[i];
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

/// w = 2 σ(s): 1 at s = 0, bounded in (0, 2).
Tensor<float> weights_of(const Tensor<float>& s) { return mul(sigmoid(s), 2.0f); }

/// Σ w_i ℓ_i / n: the weighted training loss of a batch.
Tensor<float> weighted_loss(const Tensor<float>& logits, const IndexTensor& y, const Tensor<float>& w) {
  return div(sum(mul(w, cross_entropy(logits, y, Reduction::None))), static_cast<float>(y.numel()));
}

/// One plain SGD step of θ on the weighted loss (weights are constants here).
Params sgd(nn::MLP<float>& model, const Params& theta, const Data& b, const Tensor<float>& w, float lr) {
  Params leaves;
  for (const auto& p : theta) leaves.push_back(p.detach().requires_grad_());
  const auto g = grad<float>(weighted_loss(functional_call(model, leaves, b.x), b.y, w), leaves);
  NoGradGuard no_grad;
  Params next;
  for (std::size_t i = 0; i < theta.size(); ++i) next.push_back(sub(theta[i], mul(g[i], lr)));
  return next;
}

/// MNIST or Fashion-MNIST flattened to [N, 784]: the trusted clean set and the training set are
/// disjoint parts of a shuffled train split (sizes clean and train, capped by what there is), the
/// test set the first `test` images of the test split. Sets cfg.train, cfg.test and cfg.features.
std::tuple<Data, Data, Data> load_images(const std::string& name, Config& cfg) {
  namespace md = metagrad::data;
  auto load = [&](md::Split split) {
    return name == "mnist" ? md::load_mnist<float>(split) : md::load_fashion_mnist<float>(split);
  };
  const auto train_set = load(md::Split::train), test_set = load(md::Split::test);
  auto flat = [](const md::Dataset<float>& d, std::span<const std::int64_t> rows) {
    const auto part = d.subset(rows);
    return Data{reshape(part.inputs, {part.size(), -1}), part.labels};
  };
  const auto order = md::permutation(train_set.size(), cfg.seed);
  const std::span<const std::int64_t> idx(order);
  cfg.train = std::min(cfg.train, train_set.size() - cfg.clean);
  cfg.test = std::min(cfg.test, test_set.size());
  std::vector<std::int64_t> first_test(static_cast<std::size_t>(cfg.test));
  std::iota(first_test.begin(), first_test.end(), 0);
  Data clean = flat(train_set, idx.first(static_cast<std::size_t>(cfg.clean)));
  Data train = flat(train_set, idx.subspan(static_cast<std::size_t>(cfg.clean), static_cast<std::size_t>(cfg.train)));
  cfg.features = train.x.size(1);
  return {train, clean, flat(test_set, first_test)};
}

}  // namespace

int main(int argc, char** argv) {
  const auto t_start = Clock::now();
  Config cfg;
  CommonOptions common;
  std::string data_name;
  CLI::App app{"Learning per-example weights by hypergradient on labels with 40% flipped"};
  add_common_options(app, common, cfg.seed, cfg.epochs,
                     {.quick = "half the data and 40 epochs (seconds on 2 cores)",
                      .seed = "seed for data, label noise, weights and batches"});
  app.add_option("--train", cfg.train, "training examples")->check(CLI::PositiveNumber);
  app.add_option("--hidden", cfg.hidden, "hidden units")->check(CLI::PositiveNumber);
  app.add_option("--separation", cfg.separation, "spread of the class means")->check(CLI::PositiveNumber);
  app.add_option("--noise", cfg.noise, "fraction of flipped training labels")->check(CLI::Range(0.0, 0.9));
  app.add_option("--meta-lr", cfg.meta_lr, "step on the weight logits")->check(CLI::PositiveNumber);
  app.add_option("--data", data_name, "mnist or fashion-mnist (from examples/fetch_data.sh); default: synthetic clusters")
      ->check(CLI::IsMember({"mnist", "fashion-mnist"}));
  if (const auto exit_code = parse_command_line(app, argc, argv, common, [&] { cfg.make_quick(); })) return *exit_code;

  // ---- data: clean clusters, then 40% of the training labels flipped to another class ----
  Generator gen(cfg.seed);
  Data train, clean, test;
  std::string source = "synthetic Gaussian clusters";
  if (!data_name.empty()) {
    try {
      std::tie(train, clean, test) = load_images(data_name, cfg);
      source = data_name;
    } catch (const Error& e) {
      std::printf("note: cannot load %s (%s)\n      falling back to synthetic Gaussian-cluster data\n",
                  data_name.c_str(), e.what());
    }
  }
  if (!train.x.defined()) {
    const auto means = randn<float>({cfg.classes, cfg.features}, gen, 0.0f, static_cast<float>(cfg.separation));
    train = clusters(cfg.train, means, gen);
    clean = clusters(cfg.clean, means, gen);
    test = clusters(cfg.test, means, gen);
  }
  std::vector<bool> flipped(static_cast<std::size_t>(cfg.train));
  for (std::int64_t i = 0; i < cfg.train; ++i)
    if (gen.uniform() < cfg.noise) {
      flipped[static_cast<std::size_t>(i)] = true;
      const auto shift = 1 + static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(cfg.classes - 1)));
      train.y.fresh_data()[i] = (train.y.data()[i] + shift) % cfg.classes;
    }
  const auto n_flipped = std::count(flipped.begin(), flipped.end(), true);
  std::printf("data: %s, %lld classes, %lld features; %lld train (%lld = %.1f%% labels flipped), %lld trusted "
              "clean, %lld test (seed %llu)\n",
              source.c_str(), static_cast<long long>(cfg.classes), static_cast<long long>(cfg.features),
              static_cast<long long>(cfg.train), static_cast<long long>(n_flipped),
              100.0 * static_cast<double>(n_flipped) / static_cast<double>(cfg.train),
              static_cast<long long>(cfg.clean), static_cast<long long>(cfg.test),
              static_cast<unsigned long long>(cfg.seed));

  nn::MLP<float> model({cfg.features, cfg.hidden, cfg.classes}, gen);
  Params theta, baseline;
  for (const auto& p : model.parameters()) {
    theta.push_back(p.detach());
    baseline.push_back(p.detach());
  }
  std::printf("model: MLP %lld-%lld-%lld ReLU; SGD lr %g, batch %lld; meta lr %g on w = 2 sigmoid(s); %d threads\n",
              static_cast<long long>(cfg.features), static_cast<long long>(cfg.hidden),
              static_cast<long long>(cfg.classes), cfg.lr, static_cast<long long>(cfg.batch), cfg.meta_lr,
              num_threads());

  auto s = zeros<float>({cfg.train});  // weight logits, one per training example
  const auto ones_batch = ones<float>({cfg.batch});
  const auto lr = static_cast<float>(cfg.lr);
  auto clean_loss = [&](const Params& p) { return cross_entropy(functional_call(model, p, clean.x), clean.y); };
  auto test_accuracy = [&](const Params& p) {
    NoGradGuard no_grad;
    return accuracy(functional_call(model, p, test.x), test.y);
  };
  auto mean_weights = [&] {
    double wf = 0, wc = 0;
    for (std::int64_t i = 0; i < cfg.train; ++i) {
      const double w = 2.0 / (1.0 + std::exp(-static_cast<double>(s.data()[i])));
      (flipped[static_cast<std::size_t>(i)] ? wf : wc) += w;
    }
    return std::pair{wf / static_cast<double>(n_flipped), wc / static_cast<double>(cfg.train - n_flipped)};
  };

  std::vector<std::int64_t> order(static_cast<std::size_t>(cfg.train));
  std::iota(order.begin(), order.end(), 0);
  Json epochs = Json::array();
  const Progress progress(cfg.epochs);
  double w_flipped = 1, w_clean = 1, acc = 0, acc_baseline = 0;
  for (int epoch = 1; epoch <= cfg.epochs; ++epoch) {
    for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[gen.below(i + 1)]);
    double outer_sum = 0;
    std::int64_t batches = 0;
    for (std::int64_t b0 = 0; b0 + cfg.batch <= cfg.train; b0 += cfg.batch, ++batches) {
      const auto rows = std::span(order).subspan(static_cast<std::size_t>(b0), static_cast<std::size_t>(cfg.batch));
      const Data b = take(train, rows);
      auto s_b = Tensor<float>::empty({cfg.batch});
      for (std::int64_t k = 0; k < cfg.batch; ++k) s_b.fresh_data()[k] = s.data()[rows[k]];
      s_b.requires_grad_();

      // The hypergradient of the clean loss after one look-ahead step w.r.t. the batch's weight logits.
      const auto look_ahead = sgd_step<float>(
          [&](const Params& p, std::int64_t) {
            return weighted_loss(functional_call(model, p, b.x), b.y, weights_of(s_b));
          },
          lr);
      const auto h = unrolled_hypergradient<float>(theta, look_ahead, clean_loss, {s_b}, {.steps = 1});
      outer_sum += h.outer_loss;
      // The hypergradient of a batch mean scales like 1 / |B|; the step is per unit of it.
      const float step = static_cast<float>(cfg.meta_lr) * static_cast<float>(cfg.batch);
      float* sp = s.mutable_data();
      for (std::int64_t k = 0; k < cfg.batch; ++k) sp[rows[k]] -= step * h.grads[0].data()[k];

      auto w_b = Tensor<float>::empty({cfg.batch});
      for (std::int64_t k = 0; k < cfg.batch; ++k) w_b.fresh_data()[k] = s.data()[rows[k]];
      theta = sgd(model, theta, b, weights_of(w_b), lr);
      baseline = sgd(model, baseline, b, ones_batch, lr);
    }
    std::tie(w_flipped, w_clean) = mean_weights();
    acc = test_accuracy(theta);
    acc_baseline = test_accuracy(baseline);
    const double outer_loss = outer_sum / static_cast<double>(batches);
    const double elapsed = progress.print_epoch(
        epoch, formatted("clean loss after look-ahead %.4f  mean weight flipped %.3f clean %.3f  "
                         "test acc %5.1f%% (uniform weights %5.1f%%)",
                         outer_loss, w_flipped, w_clean, 100 * acc, 100 * acc_baseline));
    epochs.push_back({{"epoch", epoch},
                      {"outer_loss", outer_loss},
                      {"mean_weight_flipped", w_flipped},
                      {"mean_weight_clean", w_clean},
                      {"test_accuracy", acc},
                      {"baseline_test_accuracy", acc_baseline},
                      {"seconds", elapsed}});
  }
  const bool separated = w_flipped < w_clean;
  std::printf("result: mean weight of flipped examples %.3f vs clean %.3f (%s); test accuracy %.1f%% reweighted vs "
              "%.1f%% with uniform weights\n",
              w_flipped, w_clean, separated ? "flipped weighted down" : "NOT separated", 100 * acc,
              100 * acc_baseline);
  if (!common.out_dir.empty()) {
    const std::filesystem::path out(common.out_dir);
    std::filesystem::create_directories(out);
    // The curves, from the per-epoch records.
    io::LineSeries acc_rw{"reweighted", {}, {}, {}}, acc_uniform{"uniform weights", {}, {}, {}};
    io::LineSeries w_fl{"flipped labels", {}, {}, {}}, w_cl{"clean labels", {}, {}, {}};
    for (const auto& e : epochs) {
      const double ep = e["epoch"].get<double>();
      for (auto* series : {&acc_rw, &acc_uniform, &w_fl, &w_cl}) series->x.push_back(ep);
      acc_rw.y.push_back(e["test_accuracy"].get<double>());
      acc_uniform.y.push_back(e["baseline_test_accuracy"].get<double>());
      w_fl.y.push_back(e["mean_weight_flipped"].get<double>());
      w_cl.y.push_back(e["mean_weight_clean"].get<double>());
    }
    const std::string on = formatted("%s, %.0f%% of the labels flipped", source.c_str(), 100 * cfg.noise);
    io::write_line_chart(out / "test_acc_per_epoch.png", "Test accuracy: " + on, "epoch", "test accuracy",
                         {acc_rw, acc_uniform});
    io::write_line_chart(out / "mean_weight_per_epoch.png", "Mean learned weight w = 2 sigmoid(s): " + on, "epoch",
                         "mean weight", {w_fl, w_cl});

    Results results("02_reweight_noisy_labels", common.quick,
                    "in the style of Learning to Reweight Examples for Robust Deep Learning (Ren et al., ICML "
                    "2018); not a reproduction of its tables",
                    {{"name", data_name.empty() || source != data_name ? "synthetic" : data_name},
                     {"source", source},
                     {"n_train", cfg.train},
                     {"n_val", cfg.clean},
                     {"n_test", cfg.test}},
                    {cfg.seed}, "no selection: both methods report the last epoch; the clean set trains the weights");
    results.doc["headline"] = {"test_acc", "mean_weight_flipped"};
    results.add_row("erm", {{"weights", "uniform"}}, true, {{"test_acc", {acc_baseline}}});
    results.add_row("reweight", {{"meta_lr", cfg.meta_lr}, {"look_ahead_steps", 1}}, true,
                    {{"test_acc", {acc}}, {"mean_weight_flipped", {w_flipped}}, {"mean_weight_clean", {w_clean}}});
    results.add_figure("test_acc_per_epoch.png");
    results.add_figure("mean_weight_per_epoch.png");
    results.doc["quick"] = common.quick;
    results.doc["config"] = cfg.json();
    results.doc["threads"] = num_threads();
    results.doc["epochs"] = epochs;
    results.doc["final"] = {{"mean_weight_flipped", w_flipped},
                            {"mean_weight_clean", w_clean},
                            {"test_accuracy", acc},
                            {"baseline_test_accuracy", acc_baseline},
                            {"seconds", progress.elapsed()}};
    results.write(out, seconds_since(t_start));
  }
  return separated ? 0 : 1;
}
