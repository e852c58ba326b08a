// SPDX-License-Identifier: MIT
// What the 1-D and 2-D agglomerations (ACD, Singh, Murdoch & Yu 2019) share: one level of a
// hierarchy, the percentile threshold they pick new units with, and the call of the caller's
// region-scoring function with its size checked.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "metagrad/core/error.hpp"

namespace metagrad {

/// One level of an ACD hierarchy: the region each unit (tile or position) lies in (−1: none yet)
/// and each region's score. Regions are numbered in the order of their first unit.
struct AcdLevel {
  std::vector<int> region;
  std::vector<double> score;
};

/// Sets of unit indices (each sorted), one per region to score.
using AcdRegions = std::vector<std::vector<std::int64_t>>;

namespace detail::acd {

/// The p-th percentile (0 ≤ p ≤ 100) of `values`, interpolated linearly between the two nearest
/// ranks as numpy's percentile does (the original thresholds with np.nanpercentile).
inline double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const double at = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(at));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (at - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

/// The free units (not yet `taken`) whose value reaches the p-th percentile of the free units'
/// values: at least the best one whenever any unit is free.
inline std::vector<bool> pick_above_percentile(const std::vector<double>& value, const std::vector<bool>& taken,
                                               double p) {
  std::vector<double> free;
  for (std::size_t u = 0; u < value.size(); ++u)
    if (!taken[u]) free.push_back(value[u]);
  std::vector<bool> picked(value.size(), false);
  if (free.empty()) return picked;
  // Never above the best free value, even by a rounding: something is always picked (agg_2d
  // lowers its percentile until something is).
  const double best = *std::max_element(free.begin(), free.end());
  const double threshold = std::min(best, percentile(std::move(free), p));
  for (std::size_t u = 0; u < value.size(); ++u) picked[u] = !taken[u] && value[u] >= threshold;
  return picked;
}

/// score_regions(regions), checked to give one finite score per region.
template <class ScoreRegions>
std::vector<double> scores_of(ScoreRegions& score_regions, const AcdRegions& regions, const char* op) {
  if (regions.empty()) return {};
  std::vector<double> s = score_regions(regions);
  check(s.size() == regions.size(), op, "score_regions gave ", s.size(), " scores for ", regions.size(), " regions");
  for (std::size_t r = 0; r < s.size(); ++r)
    check(std::isfinite(s[r]), op, "score_regions gave a non-finite score (", s[r], ") for region ", r);
  return s;
}

/// The union of two sorted unit sets, sorted.
inline std::vector<std::int64_t> united(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b) {
  std::vector<std::int64_t> u;
  u.reserve(a.size() + b.size());
  std::merge(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(u));
  u.erase(std::unique(u.begin(), u.end()), u.end());
  return u;
}

/// A level from its regions (unit sets) and their scores.
inline AcdLevel make_level(std::int64_t units, const AcdRegions& regions, std::vector<double> scores) {
  AcdLevel level{std::vector<int>(static_cast<std::size_t>(units), -1), std::move(scores)};
  for (std::size_t r = 0; r < regions.size(); ++r)
    for (std::int64_t u : regions[r]) level.region[static_cast<std::size_t>(u)] = static_cast<int>(r);
  return level;
}

/// (region, unit added) for each grown region scored in a batch after the regions themselves.
using AcdGrowth = std::vector<std::pair<std::size_t, std::int64_t>>;

/// value[u] = the interaction gain score(region ∪ u) − score(region) of each unit u that borders a
/// region, the largest where u borders two (the original keeps the last region's, noting "todo -
/// make a max"); `scores` holds the n_regions regions' scores, then the grown ones'.
inline void take_gains(std::vector<double>& value, const AcdGrowth& grown, const std::vector<double>& scores,
                       std::size_t n_regions) {
  std::vector<bool> seen(value.size(), false);
  for (std::size_t k = 0; k < grown.size(); ++k) {
    const auto [r, u] = grown[k];
    const double gain = scores[n_regions + k] - scores[r];
    const auto i = static_cast<std::size_t>(u);
    value[i] = seen[i] ? std::max(value[i], gain) : gain;
    seen[i] = true;
  }
}

/// Whether a level is one region over every unit.
inline bool is_root(const AcdLevel& level) {
  return level.score.size() == 1 && std::find(level.region.begin(), level.region.end(), -1) == level.region.end();
}

/// The hierarchy's last level, when it does not end in one region over all units yet (the
/// originals stop after their number of iterations): the whole input as one region.
template <class ScoreRegions>
void close_with_root(std::vector<AcdLevel>& levels, std::int64_t units, ScoreRegions& score_regions, const char* op) {
  if (!levels.empty() && is_root(levels.back())) return;
  AcdRegions all(1);
  for (std::int64_t u = 0; u < units; ++u) all[0].push_back(u);
  levels.push_back(make_level(units, all, scores_of(score_regions, all, op)));
}

}  // namespace detail::acd

}  // namespace metagrad
