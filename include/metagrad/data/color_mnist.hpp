// SPDX-License-Identifier: MIT
// ColorMNIST as CDEP builds it (laura-rieger/deep-explanation-penalization, mnist/ColorMNIST/
// 00_make_data.py and train.py): a digit of class y is its gray level (0..255) times colour[y] in
// train and times colour[9 − y] in validation and test, so colour predicts the class in train and
// misleads at test time; every set is then standardized per channel with the train set's mean and
// (population) std. The construction has no randomness; the split into train/valid is the caller's.
//
// The colours are python colour's Color("red").range_to(Color("purple"), 10): linear interpolation
// in HSL from red (h 0, s 1, l 0.5) to purple (#800080: rgb (128/255, 0, 128/255), which rgb2hsl
// maps to h 5/6, s 1, l 64/255), i.e. h_i = (5/6)/9 · i, s_i = 1, l_i = 0.5 + (64/255 − 0.5)/9 · i,
// each converted back with the easyrgb hsl2rgb the package uses. Computed below in the same order of
// double operations, which gives (tested against the package's output, to the last bit):
//   0 (1, 0, 0)                                   5 (0, 0.72331154684095855, 0.56257564754296807)
//   1 (0.94466230936819173, 0.52481239409343994, 0)   6 (0, 0.44531590413943323, 0.66797385620915029)
//   2 (0.79051077221011856, 0.88932461873638347, 0)   7 (0, 0.068070685064148595, 0.61263616557734202)
//   3 (0.2779956427015246, 0.83398692810457509, 0)    8 (0.24768821108690423, 0, 0.55729847494553375)
//   4 (0, 0.77864923747276693, 0.17303316388283735)   9 (0.50196078431372548, 0, 0.50196078431372537)
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "metagrad/core/error.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/data/dataset.hpp"
#include "metagrad/data/decoy_mnist.hpp"

namespace metagrad::data {

namespace detail {

using Triple = std::array<double, 3>;

// python colour's rgb2hsl, for a chromatic colour (the gray branch is never reached here).
constexpr Triple colour_rgb2hsl(double r, double g, double b) {
  const double vmin = std::min({r, g, b}), vmax = std::max({r, g, b}), diff = vmax - vmin, vsum = vmin + vmax;
  const double l = vsum / 2;
  const double s = l < 0.5 ? diff / vsum : diff / (2.0 - vsum);
  const double dr = (((vmax - r) / 6) + (diff / 2)) / diff, dg = (((vmax - g) / 6) + (diff / 2)) / diff,
               db = (((vmax - b) / 6) + (diff / 2)) / diff;
  double h = r == vmax ? db - dg : g == vmax ? (1.0 / 3) + dr - db : (2.0 / 3) + dg - dr;
  if (h < 0) h += 1;
  if (h > 1) h -= 1;
  return {h, s, l};
}

constexpr double colour_hue2rgb(double v1, double v2, double vh) {
  while (vh < 0) vh += 1;
  while (vh > 1) vh -= 1;
  if (6 * vh < 1) return v1 + (v2 - v1) * 6 * vh;
  if (2 * vh < 1) return v2;
  if (3 * vh < 2) return v1 + (v2 - v1) * ((2.0 / 3) - vh) * 6;
  return v1;
}

constexpr Triple colour_hsl2rgb(const Triple& hsl) {
  const double h = hsl[0], s = hsl[1], l = hsl[2];
  if (s == 0) return {l, l, l};
  const double v2 = l < 0.5 ? l * (1.0 + s) : (l + s) - (s * l);
  const double v1 = 2.0 * l - v2;
  return {colour_hue2rgb(v1, v2, h + (1.0 / 3)), colour_hue2rgb(v1, v2, h), colour_hue2rgb(v1, v2, h - (1.0 / 3))};
}

constexpr std::array<Triple, 10> red_to_purple() {
  const Triple begin = colour_rgb2hsl(255 / 255.0, 0 / 255.0, 0 / 255.0);
  const Triple end = colour_rgb2hsl(128 / 255.0, 0 / 255.0, 128 / 255.0);
  Triple step{};
  for (int c = 0; c < 3; ++c) step[c] = (end[c] - begin[c]) / 9;  // color_scale(begin, end, nb = 10 − 1)
  std::array<Triple, 10> out{};
  for (int i = 0; i < 10; ++i) out[i] = colour_hsl2rgb({begin[0] + step[0] * i, begin[1] + step[1] * i, begin[2] + step[2] * i});
  return out;
}

}  // namespace detail

/// CDEP's ten colours, red → purple (see the file comment for the values and their derivation).
inline constexpr std::array<std::array<double, 3>, 10> kColorMnistColours = detail::red_to_purple();

/// Per-channel mean and population std of inputs [N, C, H, W].
struct ChannelStats {
  std::vector<double> mean, std;
};

template <Floating T>
ChannelStats channel_stats(const Tensor<T>& x) {
  check(x.dim() == 4 && x.numel() > 0, "channel_stats", "needs a non-empty [N, C, H, W] tensor, got ", x.shape());
  const std::int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  ChannelStats st{std::vector<double>(static_cast<std::size_t>(c)), std::vector<double>(static_cast<std::size_t>(c))};
  for (std::int64_t k = 0; k < c; ++k) {
    double sum = 0, sq = 0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t p = 0; p < hw; ++p) sum += x.data()[(i * c + k) * hw + p];
    const double mean = sum / static_cast<double>(n * hw);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t p = 0; p < hw; ++p) {
        const double d = x.data()[(i * c + k) * hw + p] - mean;
        sq += d * d;
      }
    st.mean[static_cast<std::size_t>(k)] = mean;
    st.std[static_cast<std::size_t>(k)] = std::sqrt(sq / static_cast<double>(n * hw));
  }
  return st;
}

/// (x − mean[c]) / std[c] in place, for inputs [N, C, H, W].
template <Floating T>
void standardize_channels(Tensor<T>& x, const ChannelStats& st) {
  check(x.dim() == 4 && static_cast<std::size_t>(x.size(1)) == st.mean.size(), "standardize_channels",
        "inputs of shape ", x.shape(), " do not match ", st.mean.size(), " channel statistics");
  for (double s : st.std) check(s > 0, "standardize_channels", "a channel has std ", s, "; cannot standardize");
  const std::int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  T* p = x.mutable_data();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t k = 0; k < c; ++k)
      for (std::int64_t q = 0; q < hw; ++q) {
        T& v = p[(i * c + k) * hw + q];
        v = static_cast<T>((v - st.mean[static_cast<std::size_t>(k)]) / st.std[static_cast<std::size_t>(k)]);
      }
}

/// The coloured images before standardization: inputs [N, 3, 28, 28] = gray level (round(255·x),
/// 0..255) × colour[y] (the product in double, then rounded to T, as numpy does it) for Bias::train, × colour[9 − y] for Bias::test; labels unchanged; no masks
/// (CDEP penalizes single-pixel blobs drawn by foreground frequency, see foreground_frequency).
template <Floating T = float>
Dataset<T> colorize_mnist_cdep(const Dataset<T>& clean, Bias bias) {
  const auto gray = detail::gray_levels(clean, "colorize_mnist_cdep");
  const std::int64_t n = clean.size();
  Dataset<T> out{Tensor<T>::empty(Shape{n, 3, 28, 28}), clean.labels, {}};
  T* x = out.inputs.fresh_data();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t y = clean.labels.data()[i];
    const auto& colour = kColorMnistColours[static_cast<std::size_t>(bias == Bias::train ? y : 9 - y)];
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 784; ++p)
        x[(i * 3 + c) * 784 + p] =
            static_cast<T>(gray[static_cast<std::size_t>(i * 784 + p)] * colour[static_cast<std::size_t>(c)]);
  }
  return out;
}

/// The probability of each of the 28×28 pixels being foreground (any channel > 0) in a coloured,
/// unstandardized set, normalized to sum 1: CDEP draws its penalized single-pixel blobs from it.
template <Floating T>
std::vector<double> foreground_frequency(const Dataset<T>& colored) {
  const auto& s = colored.inputs.shape();
  check(s.rank() == 4 && s[1] == 3 && s[2] == 28 && s[3] == 28 && s[0] > 0, "foreground_frequency",
        "needs coloured images [N, 3, 28, 28], got ", s);
  std::vector<double> f(784, 0.0);
  for (std::int64_t i = 0; i < s[0]; ++i)
    for (int p = 0; p < 784; ++p) {
      double sum = 0;
      for (int c = 0; c < 3; ++c) sum += colored.inputs.data()[(i * 3 + c) * 784 + p];
      f[static_cast<std::size_t>(p)] += sum > 0.0 ? 1.0 : 0.0;
    }
  double total = 0;
  for (double v : f) total += v;
  check(total > 0, "foreground_frequency", "no image has a foreground pixel");
  for (double& v : f) v /= total;
  return f;
}

/// ColorMNIST: train coloured with colour[y], valid and test with colour[9 − y], all standardized
/// with the train set's per-channel statistics (kept in `stats`).
template <Floating T = float>
struct ColorMnist {
  Dataset<T> train, valid, test;
  ChannelStats stats;
};

template <Floating T = float>
ColorMnist<T> color_mnist_cdep(const Dataset<T>& train, const Dataset<T>& valid, const Dataset<T>& test) {
  ColorMnist<T> out{colorize_mnist_cdep(train, Bias::train), colorize_mnist_cdep(valid, Bias::test),
                    colorize_mnist_cdep(test, Bias::test), {}};
  out.stats = channel_stats(out.train.inputs);
  standardize_channels(out.train.inputs, out.stats);
  standardize_channels(out.valid.inputs, out.stats);
  standardize_channels(out.test.inputs, out.stats);
  return out;
}

}  // namespace metagrad::data
