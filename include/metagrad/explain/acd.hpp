// SPDX-License-Identifier: MIT
// Agglomerative contextual decomposition (Singh, Murdoch & Yu 2019) for images: a hierarchy of
// image regions built from CD scores, from the tiles that matter most on their own up to the whole
// image, as agg_2d builds it. The units are square tiles (1×1: pixels). Each growth level
//   1. takes the 8-connected components of the tiles picked so far as the level's regions (so
//      components that touch are merged) and scores them;
//   2. scores each component together with each free tile that borders it (4-neighbours): that
//      tile's value becomes its interaction gain score(component ∪ tile) − score(component); tiles
//      next to no component keep their previous value (first: their score alone), so new
//      components can still be seeded anywhere;
//   3. picks the free tiles whose value reaches the percentile of the free tiles' values (lowered
//      by 15 once a third of the tiles is taken), plus every free tile with 3 or 4 of its
//      4-neighbours taken (agg_2d's smoothing). The first level's seeds are the tiles picked so by
//      their scores alone, unsmoothed.
// After the growth levels, the components left are merged pairwise, the pair whose union gains
// most over the better of the two first (agg_2d's agglomerate_final), one level per merge; a last
// level with the whole image closes the hierarchy when the components do not cover it.
// A region's score is the CD rel of the target logit with the region as the mask: what the
// region explains on its own, interactions inside it included.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "metagrad/explain/acd_1d.hpp"
#include "metagrad/explain/acd_level.hpp"
#include "metagrad/explain/cd.hpp"

namespace metagrad {

struct AcdOptions {
  /// agg_2d's sweep_dim: the side of the square tiles that are the units (1: pixels, as the
  /// original runs MNIST; 2 needs about 4× fewer CD rows).
  std::int64_t tile = 1;
  /// agg_2d's percentile_include (99 on MNIST): the free tiles whose value reaches this percentile
  /// of the free tiles' values are picked at each level; 15 less once a third of the tiles is taken.
  double percentile = 99;
  /// Growth levels at most (agg_2d's num_iters; its MNIST notebook uses 5). The growth also stops
  /// when every tile is taken.
  int max_levels = 5;
  /// Rows per batched CD call (agglomerate with a model).
  std::int64_t max_batch = 512;
};

struct AcdHierarchy {
  std::int64_t rows = 0, cols = 0, tile = 1;
  std::vector<double> tile_scores;  // score of each tile alone, row-major
  std::vector<AcdLevel> levels;     // region per tile (−1: none) and score per region; the last: one region over all
  std::size_t grown_levels = 0;     // levels[0, grown_levels) come from growth, the rest from pairwise merges (and the root)
};

namespace detail::acd {

/// The 4-neighbours (diagonal = false) or 8-neighbours of tile t in a rows × cols grid.
inline std::vector<std::int64_t> grid_neighbours(std::int64_t t, std::int64_t rows, std::int64_t cols, bool diagonal) {
  std::vector<std::int64_t> n;
  const std::int64_t r = t / cols, c = t % cols;
  for (std::int64_t dr = -1; dr <= 1; ++dr)
    for (std::int64_t dc = -1; dc <= 1; ++dc) {
      if ((dr == 0 && dc == 0) || (!diagonal && dr != 0 && dc != 0)) continue;
      if (r + dr >= 0 && r + dr < rows && c + dc >= 0 && c + dc < cols) n.push_back((r + dr) * cols + c + dc);
    }
  return n;
}

/// The 8-connected components of the taken tiles (skimage's label with connectivity 2), each as
/// its sorted tiles, in the raster order of their first tile.
inline AcdRegions components_8(const std::vector<bool>& taken, std::int64_t rows, std::int64_t cols) {
  AcdRegions comps;
  std::vector<bool> seen(taken.size(), false);
  for (std::int64_t t0 = 0; t0 < rows * cols; ++t0) {
    if (!taken[static_cast<std::size_t>(t0)] || seen[static_cast<std::size_t>(t0)]) continue;
    std::vector<std::int64_t> comp{t0}, stack{t0};
    seen[static_cast<std::size_t>(t0)] = true;
    while (!stack.empty()) {
      const std::int64_t t = stack.back();
      stack.pop_back();
      for (std::int64_t n : grid_neighbours(t, rows, cols, true))
        if (taken[static_cast<std::size_t>(n)] && !seen[static_cast<std::size_t>(n)]) {
          seen[static_cast<std::size_t>(n)] = true;
          comp.push_back(n);
          stack.push_back(n);
        }
    }
    std::sort(comp.begin(), comp.end());
    comps.push_back(std::move(comp));
  }
  return comps;
}

/// agg_2d's threshold: the free tiles at or above the percentile of the free values, the
/// percentile 15 lower once more than a third of the tiles is taken ("pick more when more is
/// already picked"); then, with `smooth` (every level but the first seeds), agg_2d's smoothing: a
/// free tile with 3 or 4 taken 4-neighbours joins.
inline std::vector<bool> pick_2d(const std::vector<double>& value, const std::vector<bool>& taken, double p,
                                 std::int64_t rows, std::int64_t cols, bool smooth) {
  const auto n_taken = std::count(taken.begin(), taken.end(), true);
  if (3 * n_taken > rows * cols) p -= 15;
  auto picked = pick_above_percentile(value, taken, p);
  if (!smooth) return picked;
  std::vector<bool> now(taken.size());
  for (std::size_t t = 0; t < taken.size(); ++t) now[t] = taken[t] || picked[t];
  for (std::int64_t t = 0; t < rows * cols; ++t) {
    if (now[static_cast<std::size_t>(t)]) continue;
    int around = 0;
    for (std::int64_t n : grid_neighbours(t, rows, cols, false)) around += now[static_cast<std::size_t>(n)];
    if (around >= 3) picked[static_cast<std::size_t>(t)] = true;
  }
  return picked;
}

/// agg_2d's agglomerate_final: merge the pair of regions whose union gains most over the better of
/// the two, until one is left; one level per merge. Union scores are kept, so each merge scores
/// only the new region's unions (one call).
template <class ScoreRegions>
void merge_pairwise(AcdRegions regions, std::vector<double> scores, std::int64_t units, ScoreRegions& score_regions,
                    std::vector<AcdLevel>& levels, const char* op) {
  const std::size_t k = regions.size();
  std::vector<std::vector<double>> union_score(k, std::vector<double>(k, 0));
  auto score_unions_with = [&](const std::vector<std::size_t>& firsts) {
    AcdRegions batch;
    std::vector<std::pair<std::size_t, std::size_t>> which;
    for (std::size_t i : firsts)
      for (std::size_t j = 0; j < regions.size(); ++j)
        if (j != i && (firsts.size() == 1 || i < j)) {
          batch.push_back(united(regions[i], regions[j]));
          which.emplace_back(i, j);
        }
    const auto s = scores_of(score_regions, batch, op);
    for (std::size_t b = 0; b < s.size(); ++b)
      union_score[which[b].first][which[b].second] = union_score[which[b].second][which[b].first] = s[b];
  };
  std::vector<std::size_t> all(k);
  std::iota(all.begin(), all.end(), 0);
  if (k > 1) score_unions_with(all);
  while (regions.size() > 1) {
    std::size_t bi = 0, bj = 1;
    double best = -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < regions.size(); ++i)
      for (std::size_t j = i + 1; j < regions.size(); ++j)
        if (const double gain = union_score[i][j] - std::max(scores[i], scores[j]); gain > best) {
          best = gain;
          bi = i;
          bj = j;
        }
    regions[bi] = united(regions[bi], regions[bj]);
    scores[bi] = union_score[bi][bj];
    regions.erase(regions.begin() + static_cast<std::ptrdiff_t>(bj));
    scores.erase(scores.begin() + static_cast<std::ptrdiff_t>(bj));
    union_score.erase(union_score.begin() + static_cast<std::ptrdiff_t>(bj));
    for (auto& row : union_score) row.erase(row.begin() + static_cast<std::ptrdiff_t>(bj));
    if (regions.size() > 1) score_unions_with({bi});
    levels.push_back(make_level(units, regions, scores));
  }
}

/// CD scores (rel of logit `target`) of one image x [1, C, H, W] for masks given as tile sets.
template <Floating T, class M>
std::vector<double> region_scores(M& model, const Tensor<T>& x, std::int64_t target, const AcdRegions& regions,
                                  std::int64_t tile, std::int64_t cols, std::int64_t max_batch) {
  NoGradGuard no_grad;
  const std::int64_t c = x.size(1), h = x.size(2), w = x.size(3);
  std::vector<double> out;
  out.reserve(regions.size());
  for (std::size_t r0 = 0; r0 < regions.size(); r0 += static_cast<std::size_t>(max_batch)) {
    const std::int64_t k = std::min<std::int64_t>(max_batch, static_cast<std::int64_t>(regions.size() - r0));
    auto masks = zeros<T>(Shape{k, 1, h, w});
    T* m = masks.fresh_data();
    for (std::int64_t j = 0; j < k; ++j)
      for (std::int64_t t : regions[r0 + static_cast<std::size_t>(j)]) {
        const std::int64_t y0 = (t / cols) * tile, x0 = (t % cols) * tile;
        for (std::int64_t y = y0; y < std::min(y0 + tile, h); ++y)
          for (std::int64_t xx = x0; xx < std::min(x0 + tile, w); ++xx) m[j * h * w + y * w + xx] = T(1);
      }
    const auto rel = contextual_decomposition(model, broadcast_to(x.detach(), Shape{k, c, h, w}), masks).rel;
    check(rel.dim() == 2 && target >= 0 && target < rel.size(1), "agglomerate", "target ", target,
          " is not a class of the model's output ", rel.shape());
    for (std::int64_t j = 0; j < k; ++j) out.push_back(static_cast<double>(rel(j, target)));
  }
  return out;
}

}  // namespace detail::acd

/// The ACD hierarchy of a rows × cols grid of tiles (unit t = row · cols + col).
/// score_regions(const AcdRegions& regions) -> std::vector<double>: the score of each region, a
/// sorted set of tiles, computed in one batched call.
template <class ScoreRegions>
AcdHierarchy agglomerate_2d(std::int64_t rows, std::int64_t cols, ScoreRegions&& score_regions,
                            const AcdOptions& options = {}) {
  namespace a = detail::acd;
  const char* op = "agglomerate_2d";
  check(rows >= 1 && cols >= 1, op, "needs a grid of at least one tile, got ", rows, " x ", cols);
  check(options.percentile >= 0 && options.percentile <= 100 && options.max_levels >= 1, op,
        "needs 0 <= percentile <= 100 and max_levels >= 1, got percentile ", options.percentile, " and max_levels ",
        options.max_levels);
  const std::int64_t units = rows * cols;
  AcdHierarchy h;
  h.rows = rows;
  h.cols = cols;
  AcdRegions singles(static_cast<std::size_t>(units));
  for (std::int64_t t = 0; t < units; ++t) singles[static_cast<std::size_t>(t)] = {t};
  h.tile_scores = a::scores_of(score_regions, singles, op);

  std::vector<double> value = h.tile_scores;  // what the threshold ranks: score alone, then gain
  std::vector<bool> taken(static_cast<std::size_t>(units), false);
  taken = a::pick_2d(value, taken, options.percentile, rows, cols, false);
  AcdRegions comps;
  std::vector<double> comp_scores;
  for (int level = 0; level < options.max_levels; ++level) {
    if (std::find(taken.begin(), taken.end(), false) == taken.end()) break;
    // The components, and each with every free tile that borders it, in one call.
    comps = a::components_8(taken, rows, cols);
    AcdRegions batch = comps;
    a::AcdGrowth grown;  // (component, tile added)
    for (std::size_t c = 0; c < comps.size(); ++c) {
      std::vector<std::int64_t> border;
      for (std::int64_t t : comps[c])
        for (std::int64_t n : a::grid_neighbours(t, rows, cols, false))
          if (!taken[static_cast<std::size_t>(n)]) border.push_back(n);
      std::sort(border.begin(), border.end());
      border.erase(std::unique(border.begin(), border.end()), border.end());
      for (std::int64_t n : border) {
        batch.push_back(a::united(comps[c], {n}));
        grown.emplace_back(c, n);
      }
    }
    const auto scores = a::scores_of(score_regions, batch, op);
    comp_scores.assign(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(comps.size()));
    h.levels.push_back(a::make_level(units, comps, comp_scores));
    a::take_gains(value, grown, scores, comps.size());
    const auto picked = a::pick_2d(value, taken, options.percentile, rows, cols, true);
    for (std::size_t t = 0; t < taken.size(); ++t) taken[t] = taken[t] || picked[t];
  }
  h.grown_levels = h.levels.size();
  a::merge_pairwise(comps, comp_scores, units, score_regions, h.levels, op);
  a::close_with_root(h.levels, units, score_regions, op);  // agg_2d stops at the components' union
  return h;
}

/// The ACD hierarchy of one image x [1, C, H, W] for class `target`, with CD (explain/cd.hpp) as
/// the score: regions are tile × tile squares, all regions of a step go through the model in
/// batches of at most max_batch masks. model: an nn::Layer<T> or any module that declares its
/// chain with layers() (explain/layers.hpp).
template <Floating T, class M>
  requires LayerwiseModel<M, T>
AcdHierarchy agglomerate(M& model, const Tensor<T>& x, std::int64_t target, const AcdOptions& options = {}) {
  const char* op = "agglomerate";
  check(x.dim() == 4 && x.size(0) == 1, op, "needs one image [1, C, H, W], got ", x.shape());
  check(options.tile >= 1 && options.max_batch >= 1, op, "needs tile >= 1 and max_batch >= 1, got tile ",
        options.tile, " and max_batch ", options.max_batch);
  const std::int64_t rows = (x.size(2) + options.tile - 1) / options.tile;
  const std::int64_t cols = (x.size(3) + options.tile - 1) / options.tile;
  auto hier = agglomerate_2d(
      rows, cols,
      [&](const AcdRegions& regions) {
        return detail::acd::region_scores(model, x, target, regions, options.tile, cols, options.max_batch);
      },
      options);
  hier.tile = options.tile;
  return hier;
}

}  // namespace metagrad
