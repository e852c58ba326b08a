// SPDX-License-Identifier: MIT
// 8-bit images for pictures of explanations: grey images of inputs, diverging heatmaps of
// attributions (blue < 0 < red, white at 0, symmetric so the sign reads at a glance), nearest-
// neighbour upscaling and grids with labelled-free padding. PNG encoding is in io/png.hpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "metagrad/core/error.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::io {

/// Row-major pixels, `channels` bytes each (1: grey, 3: RGB).
struct Image {
  int width = 0, height = 0, channels = 3;
  std::vector<std::uint8_t> pixels;

  Image() = default;
  Image(int w, int h, int c, std::uint8_t fill = 0)
      : width(w), height(h), channels(c), pixels(static_cast<std::size_t>(w) * h * c, fill) {}
  std::uint8_t* at(int x, int y) { return pixels.data() + (static_cast<std::size_t>(y) * width + x) * channels; }
  const std::uint8_t* at(int x, int y) const {
    return pixels.data() + (static_cast<std::size_t>(y) * width + x) * channels;
  }
};

namespace detail {
inline std::uint8_t to_byte(double v) {
  return static_cast<std::uint8_t>(std::clamp(std::lround(v * 255.0), 0L, 255L));
}
template <Floating T>
void check_plane(const Tensor<T>& plane, const char* op) {
  check(plane.dim() == 2 && plane.numel() > 0, op, "needs a non-empty [H, W] plane, got ", plane.shape());
}
}  // namespace detail

/// A grey image of a [H, W] plane, mapping [lo, hi] to black..white (values outside are clipped).
template <Floating T>
Image grey_image(const Tensor<T>& plane, double lo, double hi) {
  detail::check_plane(plane, "grey_image");
  check(hi > lo, "grey_image", "needs hi > lo, got [", lo, ", ", hi, "]");
  Image img(static_cast<int>(plane.size(1)), static_cast<int>(plane.size(0)), 3);
  for (std::int64_t i = 0; i < plane.numel(); ++i) {
    const auto v = detail::to_byte((static_cast<double>(plane.data()[i]) - lo) / (hi - lo));
    std::fill_n(img.pixels.data() + i * 3, 3, v);
  }
  return img;
}

/// A diverging heatmap of a [H, W] plane: white at 0, full red at +limit, full blue at −limit.
/// limit <= 0 picks max |value| (a zero plane is all white).
template <Floating T>
Image heatmap_image(const Tensor<T>& plane, double limit = 0) {
  detail::check_plane(plane, "heatmap_image");
  if (limit <= 0)
    for (T v : plane.values()) limit = std::max(limit, std::abs(static_cast<double>(v)));
  Image img(static_cast<int>(plane.size(1)), static_cast<int>(plane.size(0)), 3);
  for (std::int64_t i = 0; i < plane.numel(); ++i) {
    const double v = limit > 0 ? std::clamp(static_cast<double>(plane.data()[i]) / limit, -1.0, 1.0) : 0.0;
    const double fade = 1.0 - std::abs(v);  // how much of the other two channels stays
    std::uint8_t* p = img.pixels.data() + i * 3;
    p[0] = detail::to_byte(v >= 0 ? 1.0 : fade);
    p[1] = detail::to_byte(fade);
    p[2] = detail::to_byte(v <= 0 ? 1.0 : fade);
  }
  return img;
}

/// Each pixel becomes a factor × factor block.
inline Image upscale(const Image& img, int factor) {
  check(factor >= 1, "upscale", "factor must be >= 1, got ", factor);
  Image out(img.width * factor, img.height * factor, img.channels);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) std::copy_n(img.at(x / factor, y / factor), img.channels, out.at(x, y));
  return out;
}

/// Cells (all of one size and channel count) in rows of `columns`, `pad` pixels apart.
inline Image image_grid(const std::vector<Image>& cells, int columns, int pad = 2, std::uint8_t background = 255) {
  check(!cells.empty() && columns >= 1 && pad >= 0, "image_grid", "needs cells, columns >= 1 and pad >= 0, got ",
        cells.size(), " cells, ", columns, " columns, pad ", pad);
  const int w = cells[0].width, h = cells[0].height, c = cells[0].channels;
  for (const auto& cell : cells)
    check(cell.width == w && cell.height == h && cell.channels == c, "image_grid", "cell of ", cell.width, "x",
          cell.height, "x", cell.channels, " differs from the first, ", w, "x", h, "x", c);
  const int rows = static_cast<int>((cells.size() + columns - 1) / columns);
  Image out(pad + columns * (w + pad), pad + rows * (h + pad), c, background);
  for (std::size_t k = 0; k < cells.size(); ++k) {
    const int x0 = pad + static_cast<int>(k % columns) * (w + pad), y0 = pad + static_cast<int>(k / columns) * (h + pad);
    for (int y = 0; y < h; ++y) std::copy_n(cells[k].at(0, y), w * c, out.at(x0, y0 + y));
  }
  return out;
}

}  // namespace metagrad::io
