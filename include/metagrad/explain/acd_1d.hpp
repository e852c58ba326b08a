// SPDX-License-Identifier: MIT
// Agglomerative contextual decomposition for sequences (Singh, Murdoch & Yu 2019, agg_1d): a
// hierarchy of contiguous spans, from the words that matter most on their own up to the whole
// sequence. Each level
//   1. takes the connected spans of the positions picked so far as the level's regions and scores
//      them;
//   2. scores each span together with the position just left and just right of it: that
//      position's value becomes its interaction gain score(span ∪ position) − score(span);
//      positions next to no span keep their previous value (first: their score alone);
//   3. picks the free positions whose |value| reaches the percentile of the free positions' |values|
//      (the threshold therefore falls as the strong positions are used up); spans that now touch
//      are one span at the next level.
// The scores come from the caller (score_regions), so any model and any CD (LSTM, Transformer,
// bag of words) fits; all regions of a level are scored in one call.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "metagrad/explain/acd_level.hpp"

namespace metagrad {

struct Acd1dOptions {
  /// agg_1d's percentile_include: free positions whose |value| reaches this percentile of the free
  /// positions' |values| are picked at each level. 99.5 (the original's SST setting) picks about
  /// one position per level. With 5 or fewer free positions agg_1d's fixed schedule is used
  /// (59, 49, 59, 49, 0 for 5 … 1 left: two at a time, then the last).
  double percentile = 99.5;
  /// agg_1d's num_iters (25 on SST): levels grown at most. When the sequence is not one span by
  /// then, a last level with one span over all positions is added.
  int max_levels = 25;
  /// agg_1d's absolute: pick by |value|, so positions that push against the class count too.
  bool absolute = true;
};

struct AcdHierarchy1d {
  std::int64_t length = 0;
  std::vector<double> unit_scores;  // score of each position alone
  std::vector<AcdLevel> levels;     // region per position (−1: none) and score per region; the last: one region over all
};

namespace detail::acd {

/// agg_1d's percentile for the last few free positions.
inline double percentile_1d(double p, std::int64_t free_left) {
  constexpr double kLastFew[] = {0, 0, 49, 59, 49, 59};  // index: free positions left (1 … 5)
  return free_left >= 1 && free_left <= 5 ? kLastFew[free_left] : p;
}

/// Maximal runs of taken positions, each as its sorted positions.
inline AcdRegions spans_of(const std::vector<bool>& taken) {
  AcdRegions spans;
  for (std::size_t i = 0; i < taken.size(); ++i) {
    if (!taken[i]) continue;
    if (i == 0 || !taken[i - 1]) spans.emplace_back();
    spans.back().push_back(static_cast<std::int64_t>(i));
  }
  return spans;
}

}  // namespace detail::acd

/// The ACD hierarchy of a sequence of `length` positions. score_regions(const AcdRegions& regions)
/// -> std::vector<double>: the score (e.g. the CD rel of the class logit) of each region, a sorted
/// set of positions, computed in one batched call.
template <class ScoreRegions>
AcdHierarchy1d agglomerate_1d(std::int64_t length, ScoreRegions&& score_regions, const Acd1dOptions& options = {}) {
  namespace a = detail::acd;
  const char* op = "agglomerate_1d";
  check(length >= 1, op, "needs a sequence of at least one position, got length ", length);
  check(options.percentile >= 0 && options.percentile <= 100 && options.max_levels >= 1, op,
        "needs 0 <= percentile <= 100 and max_levels >= 1, got percentile ", options.percentile, " and max_levels ",
        options.max_levels);
  const auto n = static_cast<std::size_t>(length);
  AcdHierarchy1d h;
  h.length = length;
  AcdRegions singles(n);
  for (std::size_t i = 0; i < n; ++i) singles[i] = {static_cast<std::int64_t>(i)};
  h.unit_scores = a::scores_of(score_regions, singles, op);

  std::vector<double> value = h.unit_scores;  // what the threshold ranks: score alone, then gain
  std::vector<bool> taken(n, false);
  auto pick = [&] {
    std::vector<double> ranked(n);
    std::int64_t free_left = 0;
    for (std::size_t i = 0; i < n; ++i) {
      ranked[i] = options.absolute ? std::abs(value[i]) : value[i];
      free_left += !taken[i];
    }
    return a::pick_above_percentile(ranked, taken, a::percentile_1d(options.percentile, free_left));
  };
  taken = pick();
  for (int level = 0; level < options.max_levels; ++level) {
    // The spans, and each span with its left and right neighbour, in one call.
    const AcdRegions spans = a::spans_of(taken);
    AcdRegions batch = spans;
    a::AcdGrowth grown;  // (span, position added)
    for (std::size_t s = 0; s < spans.size(); ++s)
      for (const std::int64_t next : {spans[s].front() - 1, spans[s].back() + 1})
        if (next >= 0 && next < length) {
          batch.push_back(a::united(spans[s], {next}));
          grown.emplace_back(s, next);
        }
    const auto scores = a::scores_of(score_regions, batch, op);
    h.levels.push_back(a::make_level(length, spans, {scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(spans.size())}));
    a::take_gains(value, grown, scores, spans.size());
    const auto picked = pick();
    if (std::none_of(picked.begin(), picked.end(), [](bool b) { return b; })) break;
    for (std::size_t i = 0; i < n; ++i) taken[i] = taken[i] || picked[i];
  }
  a::close_with_root(h.levels, length, score_regions, op);  // agg_1d stops after num_iters
  return h;
}

}  // namespace metagrad
