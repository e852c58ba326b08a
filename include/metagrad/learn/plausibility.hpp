// SPDX-License-Identifier: MIT
// How SMaT reports its numbers. Plausibility: the mean over examples of the ROC-AUC between the
// gold rationale mask and the explanation scores of the example's real tokens, skipping examples
// whose mask is all 0 or all 1 (notebooks/evaluate_explanations.py). The AUC is the Mann-Whitney
// statistic with tied scores counted one half, which is what sklearn's roc_auc_score gives.
// Spread over seeds: the median with the 25th and 75th percentiles (numpy's linear interpolation).
// The bootstrap of bootstrap_eval.py: 500 resamples, each of half the examples drawn with
// replacement, of the agreement between the student's and the teacher's predictions.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <vector>

#include "metagrad/core/error.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::learn {

/// ROC-AUC of `scores` against binary `labels` (0/1), ties counted one half. Needs both classes.
inline double roc_auc(std::span<const double> scores, std::span<const int> labels) {
  const char* op = "roc_auc";
  check(scores.size() == labels.size(), op, scores.size(), " scores for ", labels.size(), " labels");
  std::size_t positives = 0;
  for (int l : labels) {
    check(l == 0 || l == 1, op, "labels must be 0 or 1, got ", l);
    positives += static_cast<std::size_t>(l);
  }
  const std::size_t negatives = labels.size() - positives;
  check(positives > 0 && negatives > 0, op, "needs both classes, got ", positives, " positives and ", negatives,
        " negatives");
  for (double s : scores) check(!std::isnan(s), op, "a score is NaN");
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  // Average ranks (1-based) over runs of equal scores; the rank sum of the positives gives U.
  double positive_rank_sum = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (std::size_t k = i; k < j; ++k) positive_rank_sum += labels[order[k]] * rank;
    i = j;
  }
  const double p = static_cast<double>(positives), n = static_cast<double>(negatives);
  return (positive_rank_sum - p * (p + 1) / 2) / (p * n);
}

struct Plausibility {
  double auc = 0;            // mean per-example AUC over the examples counted
  std::int64_t counted = 0;  // examples with both rationale and non-rationale tokens
  std::int64_t skipped = 0;  // all-0 or all-1 gold masks
};

/// Mean per-example ROC-AUC of `scores` [N, S] against `gold` [N, S] (1: rationale token) over the
/// real tokens (mask [N, S] is 1 at tokens; undefined: all are).
template <Floating T>
Plausibility plausibility_auc(const Tensor<T>& scores, const Tensor<T>& gold, const Tensor<T>& mask = {}) {
  const char* op = "plausibility_auc";
  check(scores.dim() == 2 && gold.shape() == scores.shape() && (!mask.defined() || mask.shape() == scores.shape()),
        op, "scores ", scores.shape(), ", gold rationales ", gold.shape(), " and mask ",
        mask.defined() ? mask.shape().str() : std::string("undefined"), " must all be [N, S]");
  const std::int64_t n = scores.size(0), s = scores.size(1);
  Plausibility out;
  double total = 0;
  std::vector<double> sc;
  std::vector<int> lab;
  for (std::int64_t i = 0; i < n; ++i) {
    sc.clear();
    lab.clear();
    for (std::int64_t t = 0; t < s; ++t) {
      if (mask.defined() && mask.data()[i * s + t] == T(0)) continue;
      const T g = gold.data()[i * s + t];
      check(g == T(0) || g == T(1), op, "gold rationale of example ", i, " holds ", g, ", not 0 or 1");
      sc.push_back(static_cast<double>(scores.data()[i * s + t]));
      lab.push_back(g == T(1) ? 1 : 0);
    }
    const auto ones = std::count(lab.begin(), lab.end(), 1);
    if (ones == 0 || ones == static_cast<std::ptrdiff_t>(lab.size())) {
      ++out.skipped;
      continue;
    }
    total += roc_auc(sc, lab);
    ++out.counted;
  }
  out.auc = out.counted > 0 ? total / static_cast<double>(out.counted) : std::nan("");
  return out;
}

/// The q-quantile (q in [0, 1]) with linear interpolation between order statistics (numpy's default).
inline double quantile(std::vector<double> values, double q) {
  check(!values.empty() && q >= 0 && q <= 1, "quantile", "needs values and q in [0, 1], got ", values.size(),
        " values and q = ", q);
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

struct MedianIqr {
  double median = 0, q25 = 0, q75 = 0;
};
inline MedianIqr median_iqr(const std::vector<double>& values) {
  return {quantile(values, 0.5), quantile(values, 0.25), quantile(values, 0.75)};
}

struct BootstrapSummary {
  double mean = 0, low = 0, high = 0;  // mean over resamples and its 2.5 / 97.5 percentiles
};

/// Agreement of `pred` with `reference` over `resamples` draws of ratio·n examples with
/// replacement (bootstrap_eval.py: 500 resamples, ratio 0.5).
inline BootstrapSummary bootstrap_agreement(std::span<const std::int64_t> pred, std::span<const std::int64_t> reference,
                                            std::uint64_t seed, int resamples = 500, double ratio = 0.5) {
  const char* op = "bootstrap_agreement";
  check(pred.size() == reference.size() && !pred.empty(), op, pred.size(), " predictions for ", reference.size(),
        " reference predictions");
  check(resamples > 0 && ratio > 0 && ratio <= 1, op, "needs resamples > 0 and ratio in (0, 1], got ", resamples,
        " and ", ratio);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, pred.size() - 1);
  const auto m = std::max<std::size_t>(1, static_cast<std::size_t>(ratio * static_cast<double>(pred.size())));
  std::vector<double> acc;
  acc.reserve(static_cast<std::size_t>(resamples));
  for (int r = 0; r < resamples; ++r) {
    std::size_t same = 0;
    for (std::size_t i = 0; i < m; ++i) {
      const std::size_t k = pick(rng);
      same += pred[k] == reference[k] ? 1 : 0;
    }
    acc.push_back(static_cast<double>(same) / static_cast<double>(m));
  }
  BootstrapSummary out;
  out.mean = std::accumulate(acc.begin(), acc.end(), 0.0) / static_cast<double>(acc.size());
  out.low = quantile(acc, 0.025);
  out.high = quantile(acc, 0.975);
  return out;
}

}  // namespace metagrad::learn
