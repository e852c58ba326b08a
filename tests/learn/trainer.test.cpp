// SPDX-License-Identifier: MIT
// learn/trainer: the model ends in the state validation chose (not the last epoch's), early stopping
// after `patience`, the time budget, the loss's epoch hook, the checkpoint file, reproducibility.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "metagrad/core/creation.hpp"
#include "metagrad/io/safetensors.hpp"
#include "metagrad/learn/trainer.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/optim/sgd.hpp"
#include "test_util.hpp"

using namespace metagrad;

namespace trainer_test {

using Model = nn::Linear<double>;

/// Two Gaussian blobs in 3-d, labelled by the sign of the first coordinate; `flip` swaps the labels.
data::Dataset<double> blobs(std::int64_t n, std::uint64_t seed, bool flip) {
  Generator gen(seed);
  auto x = randn<double>(Shape{n, 3}, gen);
  auto y = Tensor<std::int64_t>::empty(Shape{n});
  double* px = x.mutable_data();
  std::int64_t* py = y.fresh_data();
  for (std::int64_t i = 0; i < n; ++i) {
    const bool pos = i % 2 == 0;
    px[i * 3] += pos ? 2.0 : -2.0;
    py[i] = (pos != flip) ? 1 : 0;
  }
  return {x, y, {}};
}

auto cross_entropy_loss() {
  return [](Model& m, const learn::Batch<double>& b) { return cross_entropy(m(b.x), b.y); };
}

std::vector<std::vector<double>> copy_params(const Model& m) {
  std::vector<std::vector<double>> out;
  for (const auto& p : m.parameters()) out.emplace_back(p.data(), p.data() + p.numel());
  return out;
}

/// Validation scores from a script, one per epoch.
learn::TrainerHooks scripted(std::vector<double> scores, const std::string& name = "valid_worst_group_acc") {
  learn::TrainerHooks h;
  h.evaluate = [scores, name](int epoch) {
    learn::Metrics m;
    m.set(name, scores.at(static_cast<std::size_t>(epoch - 1)));
    return m;
  };
  h.print = [](const std::string&) {};
  return h;
}

TEST_CASE("learn.trainer: the model ends in the best validation state, not the last epoch's") {
  Generator gen(1);
  Model model(3, 2, gen);
  SGD<double> opt(model.parameters(), {.lr = 0.1});
  auto loss = cross_entropy_loss();
  const auto train = blobs(40, 2, false);
  // Epoch 2 is the best; every later epoch is worse, so returning the last state would fail.
  auto hooks = scripted({0.2, 0.9, 0.5, 0.6, 0.4});
  std::vector<std::vector<std::vector<double>>> after_epoch;
  hooks.on_epoch_end = [&](const learn::EpochRecord&) { after_epoch.push_back(copy_params(model)); };
  learn::Trainer<double> trainer({.epochs = 5, .batch_size = 8}, hooks);
  const auto h = trainer.fit(model, opt, loss, train, train);
  REQUIRE(h.epochs.size() == 5);
  REQUIRE(after_epoch.size() == 5);
  CHECK(h.best_epoch == 2);
  CHECK(h.best_score == doctest::Approx(0.9));
  CHECK(h.stop_reason == "epochs");
  CHECK(copy_params(model) == after_epoch[1]);
  CHECK(copy_params(model) != after_epoch[4]);  // training did move the weights after epoch 2
  CHECK(h.epochs[1].improved);
  CHECK_FALSE(h.epochs[3].improved);
}

TEST_CASE("learn.trainer: selects with the real validation pass when training makes validation worse") {
  // Validation labels are the training labels flipped: the more the model learns, the worse it does
  // on validation, so the best validation accuracy is at the first epoch, and the final model must
  // score exactly that, strictly better than the last epoch did.
  Generator gen(4);
  Model model(3, 2, gen);
  SGD<double> opt(model.parameters(), {.lr = 0.05});
  auto loss = cross_entropy_loss();
  const auto train = blobs(64, 5, false), valid = blobs(64, 6, true);
  learn::Trainer<double> trainer({.epochs = 6, .batch_size = 16, .select_on = "valid_loss", .progress = false});
  const auto h = trainer.fit(model, opt, loss, train, valid);
  REQUIRE(h.epochs.size() == 6);
  CHECK(h.best_epoch == 1);
  const double best = h.epochs[0].valid.at("valid_loss"), last = h.epochs.back().valid.at("valid_loss");
  CHECK(best < last);
  CHECK(learn::evaluate(model, valid).loss == doctest::Approx(best).epsilon(1e-12));
  CHECK(h.epochs.back().train_loss < h.epochs.front().train_loss);  // and training itself did improve
}

TEST_CASE("learn.trainer: stops after `patience` epochs without a new best") {
  Generator gen(1);
  Model model(3, 2, gen);
  SGD<double> opt(model.parameters(), {.lr = 0.1});
  auto loss = cross_entropy_loss();
  const auto train = blobs(16, 2, false);
  // Best at epoch 2; epochs 3 and 4 are no better (a tie is not an improvement), so with patience 2
  // it stops after epoch 4 and never sees the 0.95 of epoch 6.
  learn::Trainer<double> trainer({.epochs = 10, .batch_size = 8, .patience = 2},
                                 scripted({0.5, 0.6, 0.55, 0.6, 0.7, 0.95, 0, 0, 0, 0}));
  const auto h = trainer.fit(model, opt, loss, train, train);
  CHECK(h.epochs.size() == 4);
  CHECK(h.best_epoch == 2);
  CHECK(h.stop_reason == "patience");

  // Minimizing a loss-named metric: the lowest wins.
  Model model2(3, 2, gen);
  SGD<double> opt2(model2.parameters(), {.lr = 0.1});
  learn::Trainer<double> by_loss({.epochs = 4, .batch_size = 8, .select_on = "valid_loss"},
                                 scripted({3, 2, 2.5, 1}, "valid_loss"));
  CHECK(by_loss.fit(model2, opt2, loss, train, train).best_epoch == 4);
}

TEST_CASE("learn.trainer: the time budget stops before an epoch that would overrun it") {
  Generator gen(1);
  Model model(3, 2, gen);
  SGD<double> opt(model.parameters(), {.lr = 0.1});
  auto loss = cross_entropy_loss();
  const auto train = blobs(16, 2, false);
  learn::Trainer<double> trainer({.epochs = 50, .batch_size = 8, .time_budget_s = 1e-9},
                                 scripted(std::vector<double>(50, 0.5)));
  const auto h = trainer.fit(model, opt, loss, train, train);
  CHECK(h.epochs.size() == 1);
  CHECK(h.stop_reason == "time budget");
}

/// A loss that records the epochs it was told and returns NaN from epoch `nan_from` (from 0).
struct RecordingLoss {
  std::vector<std::pair<int, int>> told{};
  std::vector<double> progress{};
  int nan_from = 1000;
  int epoch = 0;
  Tensor<double> operator()(Model& m, const learn::Batch<double>& b) {
    auto l = cross_entropy(m(b.x), b.y);
    return epoch >= nan_from ? l * std::nan("") : l;
  }
  void on_epoch(int e, int epochs) {
    told.emplace_back(e, epochs);
    epoch = e;
  }
  void on_step(double p) { progress.push_back(p); }
};

TEST_CASE("learn.trainer: tells the loss each epoch, and a non-finite loss stops without a step") {
  Generator gen(1);
  Model model(3, 2, gen);
  SGD<double> opt(model.parameters(), {.lr = 0.1});
  const auto train = blobs(16, 2, false);
  RecordingLoss loss{.nan_from = 2};
  std::vector<std::vector<std::vector<double>>> after_epoch;
  auto hooks = scripted({0.1, 0.2, 0.3, 0.4});
  hooks.on_epoch_end = [&](const learn::EpochRecord&) { after_epoch.push_back(copy_params(model)); };
  learn::Trainer<double> trainer({.epochs = 4, .batch_size = 8}, hooks);
  const auto h = trainer.fit(model, opt, loss, train, train);
  CHECK(loss.told == std::vector<std::pair<int, int>>{{0, 4}, {1, 4}, {2, 4}});
  // Two batches per epoch: progress (epoch + batch / 2) / 4 before each, up to the NaN batch.
  CHECK(loss.progress == std::vector<double>{0, 0.125, 0.25, 0.375, 0.5});
  CHECK(h.stop_reason == "non-finite loss");
  REQUIRE(h.epochs.size() == 3);
  CHECK(after_epoch[2] == after_epoch[1]);  // the NaN epoch took no step
  for (const auto& p : model.parameters())
    for (double v : p.values()) CHECK(std::isfinite(v));
}

TEST_CASE("learn.trainer: the best state is saved to the checkpoint file, and a seed reproduces a run") {
  namespace fs = std::filesystem;
  const fs::path path = fs::temp_directory_path() / ("metagrad-trainer-" + std::to_string(::getpid()) + ".safetensors");
  auto loss = cross_entropy_loss();
  const auto train = blobs(40, 2, false), valid = blobs(40, 3, false);
  auto run = [&](const fs::path& checkpoint) {
    Generator gen(7);
    auto model = std::make_shared<Model>(3, 2, gen);
    SGD<double> opt(model->parameters(), {.lr = 0.1});
    learn::Trainer<double> trainer(
        {.epochs = 3, .batch_size = 8, .select_on = "valid_acc", .seed = 11, .progress = false, .checkpoint = checkpoint});
    trainer.fit(*model, opt, loss, train, valid);
    return model;
  };
  const auto a = run(path), b = run({});
  CHECK(copy_params(*a) == copy_params(*b));
  REQUIRE(fs::exists(path));
  const auto saved = io::load_safetensors(path).named<double>("");
  for (const auto& [name, t] : a->state_dict()) CHECK(testing::same(saved.at(name), t));
  fs::remove(path);
}

TEST_CASE("learn.trainer: bad options and unknown metrics are clear errors") {
  METAGRAD_CHECK_ERROR(learn::Trainer<double>({.epochs = 0}), "Trainer", "epochs");
  METAGRAD_CHECK_ERROR(learn::Trainer<double>({.batch_size = -1}), "Trainer", "batch_size");
  Generator gen(1);
  Model model(3, 2, gen);
  SGD<double> opt(model.parameters(), {.lr = 0.1});
  auto loss = cross_entropy_loss();
  const auto train = blobs(16, 2, false);
  learn::Trainer<double> trainer({.epochs = 1, .select_on = "valid_bogus", .progress = false});
  METAGRAD_CHECK_ERROR(trainer.fit(model, opt, loss, train, train), "Metrics", "valid_bogus", "valid_worst_group_acc");
}

}  // namespace trainer_test
