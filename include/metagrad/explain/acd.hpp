// SPDX-License-Identifier: MIT
// Agglomerative contextual decomposition (Singh, Murdoch & Yu 2019) for images: a hierarchy of
// image regions built from CD scores, from single tiles up to the whole image. Following agg_2d,
// each level (1) seeds new regions at the free tiles whose own CD score is in the top fraction
// (the fraction grows level by level), (2) grows every region by the neighbouring tile that adds
// most to its CD score (the interaction gain score(R ∪ t) − score(R)), and (3) merges regions that
// touch. A region's score is the CD rel of the target logit with the region as the mask, so it
// measures what the region explains on its own, interactions inside it included.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <set>
#include <vector>

#include "metagrad/explain/cd.hpp"

namespace metagrad {

struct AcdOptions {
  std::int64_t tile = 4;
  /// Fraction of the free tiles seeded at the first level, and added to it at each further level.
  double seed_fraction = 0.05;
  int max_levels = 64;
  /// Rows per batched CD call.
  std::int64_t max_batch = 512;
};

/// One level of the hierarchy: region id per tile (−1: none yet), and each region's CD score.
struct AcdLevel {
  std::vector<int> region;
  std::vector<double> score;
};

struct AcdHierarchy {
  std::int64_t rows = 0, cols = 0, tile = 0;
  std::vector<double> tile_scores;  // CD score of each tile alone
  std::vector<AcdLevel> levels;     // the last one is one region covering every tile
};

namespace detail {

/// CD scores (rel of logit `target`) of one image x [1, C, H, W] for masks given as tile sets.
template <Floating T, class M>
std::vector<double> region_scores(M& model, const Tensor<T>& x, std::int64_t target,
                                  const std::vector<std::vector<std::int64_t>>& regions, std::int64_t tile,
                                  std::int64_t cols, std::int64_t max_batch) {
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
    for (std::int64_t j = 0; j < k; ++j) out.push_back(static_cast<double>(rel(j, target)));
  }
  return out;
}

}  // namespace detail

/// The ACD hierarchy of one image x [1, C, H, W] for class `target`.
/// model: an nn::Layer<T> or any module that declares its chain with layers() (explain/layers.hpp).
template <Floating T, class M>
  requires LayerwiseModel<M, T>
AcdHierarchy agglomerate(M& model, const Tensor<T>& x, std::int64_t target, const AcdOptions& o = {}) {
  const char* op = "agglomerate";
  check(x.dim() == 4 && x.size(0) == 1, op, "needs one image [1, C, H, W], got ", x.shape());
  check(o.tile >= 1 && o.seed_fraction > 0 && o.max_levels >= 1 && o.max_batch >= 1, op,
        "needs tile >= 1, seed_fraction > 0, max_levels >= 1 and max_batch >= 1");
  AcdHierarchy hier;
  hier.tile = o.tile;
  hier.rows = (x.size(2) + o.tile - 1) / o.tile;
  hier.cols = (x.size(3) + o.tile - 1) / o.tile;
  const std::int64_t tiles = hier.rows * hier.cols;
  auto score_of = [&](const std::vector<std::vector<std::int64_t>>& regions) {
    return detail::region_scores(model, x, target, regions, o.tile, hier.cols, o.max_batch);
  };
  std::vector<std::vector<std::int64_t>> singles(static_cast<std::size_t>(tiles));
  for (std::int64_t t = 0; t < tiles; ++t) singles[static_cast<std::size_t>(t)] = {t};
  hier.tile_scores = score_of(singles);

  auto neighbours = [&](std::int64_t t) {
    std::vector<std::int64_t> n;
    const std::int64_t r = t / hier.cols, c = t % hier.cols;
    if (r > 0) n.push_back(t - hier.cols);
    if (r + 1 < hier.rows) n.push_back(t + hier.cols);
    if (c > 0) n.push_back(t - 1);
    if (c + 1 < hier.cols) n.push_back(t + 1);
    return n;
  };
  std::vector<std::vector<std::int64_t>> regions;  // tile sets, sorted
  std::vector<int> owner(static_cast<std::size_t>(tiles), -1);
  auto rebuild_owner = [&] {
    std::fill(owner.begin(), owner.end(), -1);
    for (std::size_t r = 0; r < regions.size(); ++r)
      for (std::int64_t t : regions[r]) owner[static_cast<std::size_t>(t)] = static_cast<int>(r);
  };
  // Tiles by descending score: the order seeds are taken in.
  std::vector<std::int64_t> by_score(static_cast<std::size_t>(tiles));
  std::iota(by_score.begin(), by_score.end(), 0);
  std::stable_sort(by_score.begin(), by_score.end(), [&](auto a, auto b) {
    return hier.tile_scores[static_cast<std::size_t>(a)] > hier.tile_scores[static_cast<std::size_t>(b)];
  });

  for (int level = 1; level <= o.max_levels; ++level) {
    // 1. Seeds: the best-scoring tiles of the top `level · seed_fraction` that are still free.
    const auto top = static_cast<std::int64_t>(std::ceil(std::min(1.0, level * o.seed_fraction) * tiles));
    for (std::int64_t k = 0; k < top; ++k) {
      const std::int64_t t = by_score[static_cast<std::size_t>(k)];
      if (owner[static_cast<std::size_t>(t)] < 0) {
        regions.push_back({t});
        owner[static_cast<std::size_t>(t)] = static_cast<int>(regions.size() - 1);
      }
    }
    // 2. Growth: each region takes its free neighbour with the largest interaction gain.
    std::vector<std::vector<std::int64_t>> candidates;
    std::vector<std::pair<std::size_t, std::int64_t>> which;  // (region, tile added)
    for (std::size_t r = 0; r < regions.size(); ++r) {
      std::set<std::int64_t> free;
      for (std::int64_t t : regions[r])
        for (std::int64_t n : neighbours(t))
          if (owner[static_cast<std::size_t>(n)] < 0) free.insert(n);
      for (std::int64_t n : free) {
        auto grown = regions[r];
        grown.push_back(n);
        candidates.push_back(std::move(grown));
        which.emplace_back(r, n);
      }
    }
    const auto base = score_of(regions);
    const auto grown = score_of(candidates);
    std::vector<std::int64_t> best(regions.size(), -1);
    std::vector<double> best_gain(regions.size(), 0);
    for (std::size_t k = 0; k < candidates.size(); ++k) {
      const auto [r, n] = which[k];
      const double gain = grown[k] - base[r];
      if (best[r] < 0 || gain > best_gain[r]) {
        best[r] = n;
        best_gain[r] = gain;
      }
    }
    for (std::size_t r = 0; r < regions.size(); ++r)
      if (best[r] >= 0 && owner[static_cast<std::size_t>(best[r])] < 0) {
        regions[r].push_back(best[r]);
        owner[static_cast<std::size_t>(best[r])] = static_cast<int>(r);
      }
    // 3. Merge regions that touch (union-find over region ids).
    std::vector<int> parent(regions.size());
    std::iota(parent.begin(), parent.end(), 0);
    auto find = [&](int a) {
      while (parent[static_cast<std::size_t>(a)] != a) a = parent[static_cast<std::size_t>(a)];
      return a;
    };
    for (std::int64_t t = 0; t < tiles; ++t)
      if (owner[static_cast<std::size_t>(t)] >= 0)
        for (std::int64_t n : neighbours(t))
          if (owner[static_cast<std::size_t>(n)] >= 0)
            parent[static_cast<std::size_t>(find(owner[static_cast<std::size_t>(t)]))] =
                find(owner[static_cast<std::size_t>(n)]);
    std::vector<std::vector<std::int64_t>> merged;
    std::vector<int> new_id(regions.size(), -1);
    for (std::size_t r = 0; r < regions.size(); ++r) {
      const int root = find(static_cast<int>(r));
      if (new_id[static_cast<std::size_t>(root)] < 0) {
        new_id[static_cast<std::size_t>(root)] = static_cast<int>(merged.size());
        merged.emplace_back();
      }
      auto& dst = merged[static_cast<std::size_t>(new_id[static_cast<std::size_t>(root)])];
      dst.insert(dst.end(), regions[r].begin(), regions[r].end());
    }
    for (auto& m : merged) std::sort(m.begin(), m.end());
    regions = std::move(merged);
    rebuild_owner();
    hier.levels.push_back({owner, score_of(regions)});
    if (regions.size() == 1 && static_cast<std::int64_t>(regions[0].size()) == tiles) break;
  }
  return hier;
}

}  // namespace metagrad
