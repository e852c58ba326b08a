// SPDX-License-Identifier: MIT
// Decoy-MNIST, built exactly as two papers' code builds it, from any data set of 28×28 gray images
// in [0, 1] (MNIST or Fashion-MNIST). Both add a spurious feature that predicts the label in train
// and not at test time, and a mask (1 = the decoy, a feature a human marks irrelevant) for the
// explanation losses.
//  - decoy_mnist_robust_mlx: "Use perturbations when learning from explanations" (vihari/robust_mlx,
//    decoy_CIFAR_dataset.py augment2): 3 channels; the digit squeezed to 28 wide × 14 high into the
//    top or bottom half at random; the other half the constant 25·label (train) or 25·(a random digit)
//    (val/test); mask = the decoy half; normalized with the CIFAR-10 constants the code uses.
//  - decoy_mnist_cdep: CDEP (laura-rieger/deep-explanation-penalization, mnist/DecoyMNIST/
//    00_make_data.py; read in its port ShaileshSridhar2403/Re-CDEP): a 5×5 patch in a random corner,
//    255 − 25·label (train) or 25·label (test); pixels scaled to [−1, 1] by the set's maximum; mask =
//    all four 5×5 corners.
// Pixel arithmetic is done on the 0..255 scale the originals use (inputs are rounded to it first).
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "metagrad/core/error.hpp"
#include "metagrad/core/random.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/data/dataset.hpp"

namespace metagrad::data {

/// Which version of a biased data set to build: `train` (the spurious feature follows the label) or
/// `test` (for validation and test sets: the feature is randomized or shifted).
enum class Bias { train, test };

/// robust_mlx's input normalization (CIFAR-10's per-channel mean and std, kept for Decoy-MNIST).
inline constexpr std::array<double, 3> kDecoyMnistMean{0.4914, 0.4822, 0.4465};
inline constexpr std::array<double, 3> kDecoyMnistStd{0.2023, 0.1994, 0.2010};

namespace detail {

/// Checks that `clean` holds [N, 1, 28, 28] images in [0, 1] with labels 0..9; returns them as uint8
/// gray levels round(255·x), the scale the papers' code works on.
template <Floating T>
std::vector<std::uint8_t> gray_levels(const Dataset<T>& clean, const char* op) {
  clean.validate(op);
  const auto& s = clean.inputs.shape();
  check(s.rank() == 4 && s[1] == 1 && s[2] == 28 && s[3] == 28, op, "needs images of shape [N, 1, 28, 28], got ", s);
  for (auto y : clean.labels.values()) check(y >= 0 && y <= 9, op, "label ", y, " is outside 0..9");
  std::vector<std::uint8_t> g(static_cast<std::size_t>(clean.inputs.numel()));
  const T* x = clean.inputs.data();
  for (std::size_t i = 0; i < g.size(); ++i) {
    check(x[i] >= T(0) && x[i] <= T(1), op, "pixel ", x[i], " at ", i, " is outside [0, 1]");
    g[i] = static_cast<std::uint8_t>(std::lround(static_cast<double>(x[i]) * 255.0));
  }
  return g;
}

/// Pillow's resampling coefficients (Resample.c, Pillow >= 8: precompute_coeffs then
/// normalize_coeffs_8bpc) for the bicubic filter (a = −0.5) from `in` to `out` samples: the filter is
/// widened by the downscale factor (antialiasing), each row normalized to sum 1, then turned into
/// fixed point with 22 fraction bits. Image.resize defaults to bicubic for RGB images.
struct PilCoeffs {
  std::vector<int> first;                 // first input sample of each output sample
  std::vector<std::vector<std::int32_t>> k;  // its weights
};
inline PilCoeffs pil_bicubic_coeffs(int in, int out) {
  auto bicubic = [](double x) {
    constexpr double a = -0.5;
    x = std::abs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
  };
  const double scale = static_cast<double>(in) / out, filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale, ss = 1.0 / filterscale;
  PilCoeffs c;
  for (int o = 0; o < out; ++o) {
    const double center = (o + 0.5) * scale;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in) - xmin;
    std::vector<double> w(static_cast<std::size_t>(xmax));
    double sum = 0;
    for (int x = 0; x < xmax; ++x) sum += w[static_cast<std::size_t>(x)] = bicubic((x + xmin - center + 0.5) * ss);
    std::vector<std::int32_t> k;
    for (double v : w) {
      const double kv = sum != 0.0 ? v / sum : v;
      k.push_back(static_cast<std::int32_t>(kv < 0 ? -0.5 + kv * (1 << 22) : 0.5 + kv * (1 << 22)));
    }
    c.first.push_back(xmin);
    c.k.push_back(std::move(k));
  }
  return c;
}

/// One 28×28 uint8 image resized to 28 wide × 14 high as PIL does it (only the vertical pass runs:
/// the width is unchanged), rounding and clipping like Pillow's 8-bit path.
inline std::array<std::uint8_t, 14 * 28> pil_squeeze_rows(const std::uint8_t* img, const PilCoeffs& c) {
  std::array<std::uint8_t, 14 * 28> out{};
  for (int r = 0; r < 14; ++r)
    for (int col = 0; col < 28; ++col) {
      std::int64_t acc = std::int64_t{1} << 21;
      const auto& k = c.k[static_cast<std::size_t>(r)];
      for (std::size_t j = 0; j < k.size(); ++j) acc += std::int64_t{img[(c.first[static_cast<std::size_t>(r)] + j) * 28 + col]} * k[j];
      out[static_cast<std::size_t>(r * 28 + col)] =
          acc <= 0 ? 0 : acc >= (std::int64_t{256} << 22) ? 255 : static_cast<std::uint8_t>(acc >> 22);
    }
  return out;
}

}  // namespace detail

/// robust_mlx's Decoy-MNIST from `clean` ([N, 1, 28, 28] in [0, 1], labels 0..9): inputs [N, 3, 28, 28]
/// (normalized with kDecoyMnistMean/Std unless `normalize` is false, then in [0, 1]), the same labels,
/// masks [N, 3, 28, 28] = 1 on the decoy half. For each image, in this order, the seeded generator
/// draws the decoy digit (only for Bias::test; Bias::train uses the label) and then whether the digit
/// goes to the top (1) or the bottom (0) half.
/// Two differences from the original, both deliberate: robust_mlx draws these afresh (unseeded) every
/// time __getitem__ is called, i.e. every epoch; to match, rebuild the train set each epoch with a
/// seed derived from the epoch. And its mask is one channel [28, 28] broadcast over the 3 channels;
/// here it is stored per channel, with the same values.
template <Floating T = float>
Dataset<T> decoy_mnist_robust_mlx(const Dataset<T>& clean, Bias bias, std::uint64_t seed, bool normalize = true) {
  constexpr const char* op = "decoy_mnist_robust_mlx";
  const auto gray = detail::gray_levels(clean, op);
  const std::int64_t n = clean.size();
  const auto coeffs = detail::pil_bicubic_coeffs(28, 14);
  Dataset<T> out{Tensor<T>::empty(Shape{n, 3, 28, 28}), clean.labels, Tensor<T>::empty(Shape{n, 3, 28, 28})};
  T* x = out.inputs.fresh_data();
  T* m = out.masks.fresh_data();
  std::array<T, 3 * 256> level{};  // (v / 255 − mean[c]) / std[c] for every gray level v and channel c
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v)
      level[static_cast<std::size_t>(c * 256 + v)] =
          static_cast<T>(normalize ? (v / 255.0 - kDecoyMnistMean[static_cast<std::size_t>(c)]) / kDecoyMnistStd[static_cast<std::size_t>(c)]
                                   : v / 255.0);
  Generator gen(seed);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t decoy_digit = bias == Bias::train ? clean.labels.data()[i] : static_cast<std::int64_t>(gen.below(10));
    const int patch = static_cast<int>(25 * decoy_digit);
    const bool digit_on_top = gen.below(2) == 1;
    const auto squeezed = detail::pil_squeeze_rows(gray.data() + i * 784, coeffs);
    for (int r = 0; r < 28; ++r) {
      const bool decoy_row = digit_on_top ? r >= 14 : r < 14;
      const int digit_row = digit_on_top ? r : r - 14;
      for (int col = 0; col < 28; ++col) {
        const int v = decoy_row ? patch : squeezed[static_cast<std::size_t>(digit_row * 28 + col)];
        for (int c = 0; c < 3; ++c) {
          const std::int64_t at = ((i * 3 + c) * 28 + r) * 28 + col;
          x[at] = level[static_cast<std::size_t>(c * 256 + v)];
          m[at] = decoy_row ? T(1) : T(0);
        }
      }
    }
  }
  return out;
}

/// CDEP's mask: 1 on the four 5×5 corners of a 28×28 image, [1, 28, 28].
template <Floating T = float>
Tensor<T> cdep_corner_mask() {
  auto m = Tensor<T>::empty(Shape{1, 28, 28});
  T* p = m.fresh_data();
  for (int r = 0; r < 28; ++r)
    for (int c = 0; c < 28; ++c) p[r * 28 + c] = ((r < 5 || r >= 23) && (c < 5 || c >= 23)) ? T(1) : T(0);
  return m;
}

/// CDEP's Decoy-MNIST from `clean` ([N, 1, 28, 28] in [0, 1], labels 0..9): a 5×5 patch of gray
/// level 255 − 25·label (Bias::train) or 25·label (Bias::test) in a corner the seeded generator draws
/// per image (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right); then, as the original does in
/// float32, every level v becomes v / M · 2 − 1 with M the largest level in the set (255 for MNIST and
/// Fashion-MNIST), so inputs lie in [−1, 1]. Masks [N, 1, 28, 28] = all four corners.
template <Floating T = float>
Dataset<T> decoy_mnist_cdep(const Dataset<T>& clean, Bias bias, std::uint64_t seed) {
  constexpr const char* op = "decoy_mnist_cdep";
  auto gray = detail::gray_levels(clean, op);
  const std::int64_t n = clean.size();
  Generator gen(seed);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t y = clean.labels.data()[i];
    const auto value = static_cast<std::uint8_t>(bias == Bias::train ? 255 - 25 * y : 25 * y);
    const auto corner = gen.below(4);
    const int r0 = corner < 2 ? 0 : 23, c0 = corner % 2 == 0 ? 0 : 23;
    std::uint8_t* img = gray.data() + i * 784;
    for (int r = r0; r < r0 + 5; ++r)
      for (int c = c0; c < c0 + 5; ++c) img[r * 28 + c] = value;
  }
  const int top = gray.empty() ? 1 : *std::max_element(gray.begin(), gray.end());
  check(top > 0, op, "every pixel of every image is 0; cannot scale to [-1, 1]");
  Dataset<T> out{Tensor<T>::empty(Shape{n, 1, 28, 28}), clean.labels, Tensor<T>::empty(Shape{n, 1, 28, 28})};
  const auto corners = cdep_corner_mask<T>();
  T* x = out.inputs.fresh_data();
  T* m = out.masks.fresh_data();
  for (std::int64_t i = 0; i < n; ++i)
    for (int p = 0; p < 784; ++p) {
      x[i * 784 + p] = static_cast<T>(gray[static_cast<std::size_t>(i * 784 + p)]) / static_cast<T>(top) * T(2) - T(1);
      m[i * 784 + p] = corners.data()[p];
    }
  return out;
}

}  // namespace metagrad::data
