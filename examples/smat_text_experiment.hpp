// SPDX-License-Identifier: MIT
// The SMaT text task shared by 09_smat_text_synthetic and 10_smat_text (they differ only in their
// data): a Transformer over token ids with a padding mask, explained over its tokens, and the
// explanations shown as shaded tokens in explanations.html. The experiment is smat_experiment.hpp's.
#pragma once
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "metagrad/data/text.hpp"
#include "metagrad/io/html.hpp"
#include "metagrad/learn/masked_lm.hpp"
#include "smat_experiment.hpp"

namespace metagrad::examples::smat {

using TextData = data::TextDataset<T>;

/// The splits of a text task; gold rationales [N, S] (1 on the tokens that decide the label) for
/// test where the task has them.
struct TextTask {
  using Data = TextData;
  using Model = nn::TransformerEncoder<T>;
  using Forward = ml::TransformerAttentionForward;

  std::string name, source;
  std::vector<std::string> vocabulary;  // id -> token
  TextData teacher_train, pool, valid, test;
  Tensor<T> test_gold;

  Model make_model(const Config& cfg, Generator& gen) const {
    return Model({.vocab_size = static_cast<std::int64_t>(vocabulary.size()),
                  .max_len = test.ids.size(1),
                  .d_model = cfg.d_model,
                  .num_heads = cfg.heads,
                  .d_ff = cfg.d_ff,
                  .num_layers = cfg.layers,
                  .num_classes = 2,
                  .pre_norm = cfg.pre_norm},
                 gen);
  }
  Tensor<T> logits(Model& model, const TextData& b) const { return model.forward(b.ids, b.mask).logits; }
  /// A student body pretrained by masked-token prediction on the teacher split's texts (labels
  /// unused): every parameter but the classification head.
  NamedTensors<T> pretrain_student_body(const Config& cfg) const {
    Generator gen(2000);
    Model body = make_model(cfg, gen);
    Progress progress(cfg.pretrain_epochs);
    learn::pretrain_masked_lm(body, teacher_train, {.epochs = cfg.pretrain_epochs, .batch_size = cfg.batch, .seed = 2000},
                              [&](int e, double loss) {
                                progress.print_epoch(e, formatted("student pretraining (masked tokens) loss %.4f", loss));
                              });
    NamedTensors<T> state;
    for (const auto& [name, t] : body.state_dict())
      if (!name.starts_with("head.")) state.insert(name, t);
    return state;
  }
  Tensor<T> head_scores(Model& model, const TextData& b) const {
    return metagrad::head_scores(model.forward(b.ids, b.mask).attention_logits, b.mask);
  }
  Tensor<T> explanation_mask(const TextData& d) const { return d.mask; }
  Tensor<T> static_scores(ml::StaticExplainer kind, Model& model, const TextData& b) const {
    return ml::static_explainer_scores(kind, model, b.ids, b.mask);
  }
  TextData relabelled(const TextData& d, const std::vector<std::int64_t>& labels) const {
    auto y = IndexTensor::empty(Shape{static_cast<std::int64_t>(labels.size())});
    std::copy(labels.begin(), labels.end(), y.fresh_data());
    return {d.ids, d.mask, y};
  }
  std::string sizes() const {
    return formatted("max_len %lld, vocabulary %zu", static_cast<long long>(test.ids.size(1)), vocabulary.size());
  }
  Json data_json() const { return {{"max_len", test.ids.size(1)}}; }

  /// explanations.html: each shown test example's tokens shaded by each explanation (and its gold
  /// rationale where there is one).
  void write_explanations(const std::filesystem::path& out, const TextData& shown,
                          const std::map<std::string, Tensor<T>>& dist, Results& results) const {
    std::vector<io::TokenLine> lines;
    const bool has_gold = test_gold.defined();
    for (std::int64_t i = 0; i < shown.size(); ++i) {
      std::vector<std::string> tokens;
      std::int64_t len = 0;
      for (std::int64_t t = 0; t < shown.ids.size(1) && shown.mask(i, t) != 0; ++t, ++len)
        tokens.push_back(vocabulary[static_cast<std::size_t>(shown.ids(i, t))]);
      if (has_gold) {
        std::vector<double> g;
        for (std::int64_t t = 0; t < len; ++t) g.push_back(static_cast<double>(test_gold(i, t)));
        lines.push_back({tokens, g, formatted("#%lld gold rationale (label %lld, teacher %lld):", static_cast<long long>(i),
                                              static_cast<long long>(test.labels(i)), static_cast<long long>(shown.labels(i)))});
      }
      for (const auto& [c, d] : dist) {
        std::vector<double> sc;
        for (std::int64_t t = 0; t < len; ++t) sc.push_back(static_cast<double>(d(i, t)));
        lines.push_back({tokens, sc, formatted("#%lld %s:", static_cast<long long>(i), c.c_str())});
      }
    }
    io::write_token_html(out / "explanations.html",
                         formatted("SMaT teacher explanations on %s test examples (shade: share of the token distribution, "
                                   "per line)", name.c_str()),
                         lines);
    results.doc["html"] = "explanations.html";
  }
};

}  // namespace metagrad::examples::smat
