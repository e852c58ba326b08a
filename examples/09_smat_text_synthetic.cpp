// SPDX-License-Identifier: MIT
// SMaT ("Learning to Scaffold", Fernandes et al., NeurIPS 2022) on a generated text task whose
// label is decided by known keywords, so every explainer's plausibility against the true rationale
// is exact. A document is filler words with a few keywords: 1 to 3 of its class's keywords
// ("pos0".."pos9" for class 1, "neg0".."neg9" for class 0) and fewer of the other class's; the
// label is the class with more keywords, and the gold rationale is every keyword position. The
// experiment (teacher, students on N in {125, 250, 500}, the seven conditions, tables, figures) is
// smat_text_experiment.hpp's.
//   09_smat_text_synthetic [--quick] [--out DIR] [--seeds N] [--ns N...] [--conditions a,b]
//                          [--max-len L] [--fillers V] [--threads N] ...
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "smat_text_experiment.hpp"

using namespace metagrad;
using namespace metagrad::examples;
using namespace metagrad::examples::smat;

namespace {

struct TaskConfig {
  std::int64_t max_len = 32, min_len = 12, fillers = 300, keywords_per_class = 10;
  std::int64_t teacher_train = 3000, pool = 500, valid = 200, test = 1000;
};

struct Generated {
  data::Documents docs;
  std::vector<std::int64_t> labels;
  std::vector<std::vector<int>> rationale;  // per document, 1 at keyword positions
};

Generated generate(std::int64_t n, const TaskConfig& tc, std::mt19937_64& rng) {
  Generated g;
  auto uniform = [&](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); };
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t y = uniform(0, 1), len = uniform(tc.min_len, tc.max_len);
    const std::int64_t own = uniform(1, 3), other = uniform(0, own - 1);
    std::vector<std::string> doc(static_cast<std::size_t>(len));
    std::vector<int> rat(static_cast<std::size_t>(len), 0);
    for (auto& w : doc) w = "w" + std::to_string(uniform(0, tc.fillers - 1));
    std::vector<std::int64_t> pos(static_cast<std::size_t>(len));
    for (std::int64_t t = 0; t < len; ++t) pos[static_cast<std::size_t>(t)] = t;
    std::shuffle(pos.begin(), pos.end(), rng);
    for (std::int64_t k = 0; k < own + other; ++k) {
      const bool positive = (k < own) == (y == 1);
      const auto p = static_cast<std::size_t>(pos[static_cast<std::size_t>(k)]);
      doc[p] = (positive ? "pos" : "neg") + std::to_string(uniform(0, tc.keywords_per_class - 1));
      rat[p] = 1;
    }
    g.docs.push_back(std::move(doc));
    g.labels.push_back(y);
    g.rationale.push_back(std::move(rat));
  }
  return g;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string example = "smat_text_synthetic";
  Config cfg;
  TaskConfig tc;
  CommonOptions common;
  common.out_dir = "out/09_smat_text_synthetic";
  std::uint64_t data_seed = 0;
  int unused_epochs = 1;
  CLI::App app{"SMaT on a keyword text task with exact rationales"};
  add_common_options(app, common, data_seed, unused_epochs,
                     {.quick = "1 seed, N in {125, 250}, d_model 32, short sequences: a couple of minutes",
                      .seed = "seed of the generated data"});
  add_options(app, cfg);
  app.add_option("--teacher-train", tc.teacher_train, "teacher split size")->check(CLI::PositiveNumber);
  app.add_option("--max-len", tc.max_len, "longest document (tokens)")->check(CLI::PositiveNumber);
  app.add_option("--fillers", tc.fillers, "filler words in the vocabulary")->check(CLI::PositiveNumber);
  if (auto code = parse_command_line(app, argc, argv, common, [&] {
        cfg.seeds = 1;
        cfg.ns = {125, 250};
        cfg.d_model = 32;
        cfg.d_ff = 64;
        cfg.teacher_epochs = 6;
        cfg.max_epochs = 60;
        cfg.patience = 12;
        tc.max_len = 24;
        tc.min_len = 10;
        tc.teacher_train = 2000;
        tc.pool = 250;
        tc.valid = 150;
        tc.test = 300;
      }))
    return *code;
  check(tc.min_len <= tc.max_len && tc.max_len >= 4, example.c_str(), "--max-len must be >= 4 and >= the shortest document (",
        tc.min_len, ")");
  std::mt19937_64 rng(data_seed);
  const auto teacher_train = generate(tc.teacher_train, tc, rng), pool = generate(tc.pool, tc, rng),
             valid = generate(tc.valid, tc, rng), test = generate(tc.test, tc, rng);
  const auto vocab = data::Vocabulary::build(teacher_train.docs);
  auto encode = [&](const Generated& g) {
    auto [ids, mask] = data::encode<T>(g.docs, vocab, tc.max_len);
    auto y = IndexTensor::empty(Shape{static_cast<std::int64_t>(g.labels.size())});
    std::copy(g.labels.begin(), g.labels.end(), y.fresh_data());
    return TextData{ids, mask, y};
  };
  TextTask task;
  task.name = "keyword text (synthetic)";
  task.source = "generated: filler words w0..w" + std::to_string(tc.fillers - 1) + ", class keywords pos0..pos" +
                std::to_string(tc.keywords_per_class - 1) + " / neg0..neg" + std::to_string(tc.keywords_per_class - 1);
  for (std::int64_t i = 0; i < vocab.size(); ++i) task.vocabulary.push_back(vocab.token(i));
  task.teacher_train = encode(teacher_train);
  task.pool = encode(pool);
  task.valid = encode(valid);
  task.test = encode(test);
  task.test_gold = zeros<T>(task.test.ids.shape());
  for (std::size_t i = 0; i < test.rationale.size(); ++i)
    for (std::size_t t = 0; t < test.rationale[i].size(); ++t)
      task.test_gold.mutable_data()[static_cast<std::int64_t>(i) * tc.max_len + static_cast<std::int64_t>(t)] =
          static_cast<T>(test.rationale[i][t]);
  return run_experiment(task, cfg, common, example,
                        formatted("documents of %lld..%lld tokens; label = the class with more keywords; gold "
                                  "rationale = every keyword position; data seed %llu",
                                  static_cast<long long>(tc.min_len), static_cast<long long>(tc.max_len),
                                  static_cast<unsigned long long>(data_seed)));
} catch (const std::exception& e) {
  std::fprintf(stderr, "09_smat_text_synthetic: %s\n", e.what());
  return 1;
}
