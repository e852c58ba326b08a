// SPDX-License-Identifier: MIT
// The ACD picture of 03_explain_mnist: one row per image, one column per chosen level of its ACD
// hierarchy, as the ACD paper draws it. Each cell shows the image in light grey, each region of the
// level filled with the colour of its CD score (red: towards the class, blue: against) and outlined.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

#include "metagrad/explain/acd.hpp"
#include "metagrad/io/image.hpp"

namespace metagrad::examples {

/// One cell, `scale` screen pixels per image pixel: the image [H, W] in light grey, the regions of
/// `level` coloured by score (intensity √(|score| / limit): small regions stay visible beside the
/// whole image's score) and outlined in dark grey where they meet another region or the background.
inline io::Image acd_level_cell(const Tensor<float>& plane, const AcdHierarchy& h, const AcdLevel& level, double limit,
                                int scale) {
  const int H = static_cast<int>(plane.size(0)), W = static_cast<int>(plane.size(1));
  auto region_at = [&](int y, int x) {
    if (y < 0 || x < 0 || y >= H || x >= W) return -2;
    return level.region[static_cast<std::size_t>((y / h.tile) * h.cols + x / h.tile)];
  };
  io::Image out(W * scale, H * scale, 3);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const double ink = std::clamp(static_cast<double>(plane(y, x)), 0.0, 1.0);
      double rgb[3] = {1 - 0.45 * ink, 1 - 0.45 * ink, 1 - 0.45 * ink};  // the digit, light
      if (const int r = region_at(y, x); r >= 0) {
        const double s = level.score[static_cast<std::size_t>(r)];
        const double v = std::sqrt(std::min(1.0, std::abs(s) / limit));
        const double keep = 1 - 0.85 * v;  // how much of the other channels stays
        rgb[0] = s >= 0 ? 1 - 0.2 * v : keep;
        rgb[1] = keep;
        rgb[2] = s >= 0 ? keep : 1 - 0.2 * v;
        for (double& c : rgb) c *= 1 - 0.25 * ink;  // the stroke stays visible inside a region
      }
      // Outline: the edge pixels of a block whose neighbour lies in another region.
      for (int dy = 0; dy < scale; ++dy)
        for (int dx = 0; dx < scale; ++dx) {
          const int r = region_at(y, x);
          const bool edge = r >= 0 && ((dy == 0 && region_at(y - 1, x) != r) || (dy == scale - 1 && region_at(y + 1, x) != r) ||
                                       (dx == 0 && region_at(y, x - 1) != r) || (dx == scale - 1 && region_at(y, x + 1) != r));
          std::uint8_t* p = out.at(x * scale + dx, y * scale + dy);
          for (int c = 0; c < 3; ++c)
            p[c] = edge ? 60 : static_cast<std::uint8_t>(std::lround(255 * std::clamp(rgb[c], 0.0, 1.0)));
        }
    }
  return out;
}

/// The levels to draw, the same indices for every hierarchy so that a column is one level:
/// `columns` − 1 growth levels spread evenly from the first to the last one that every hierarchy
/// has, then the last level (the whole image; its index differs from image to image).
inline std::vector<std::size_t> acd_shown_levels(const std::vector<AcdHierarchy>& hs, std::size_t columns) {
  std::size_t grown = hs.front().grown_levels;
  for (const auto& h : hs) grown = std::min(grown, h.grown_levels);
  std::set<std::size_t> shown;
  if (grown > 0 && columns > 1)
    for (std::size_t k = 0; k + 1 < columns; ++k)
      shown.insert(columns > 2 ? (k * (grown - 1) + (columns - 2) / 2) / (columns - 2) : 0);
  std::vector<std::size_t> out(shown.begin(), shown.end());
  out.push_back(std::numeric_limits<std::size_t>::max());  // the last level of each
  return out;
}

/// Level l of h, or its last level where l is past its end (the last column's index).
inline const AcdLevel& acd_level_at(const AcdHierarchy& h, std::size_t l) { return h.levels[std::min(l, h.levels.size() - 1)]; }

/// Levels whose regions differ from the level before (the first counts): how many steps of the
/// hierarchy a picture of these levels can show.
inline std::size_t distinct_levels(const AcdHierarchy& h, const std::vector<std::size_t>& which) {
  std::size_t n = 0;
  const AcdLevel* before = nullptr;
  for (std::size_t l : which) {
    const auto& level = acd_level_at(h, l);
    if (!before || level.region != before->region) ++n;
    before = &level;
  }
  return n;
}

}  // namespace metagrad::examples
