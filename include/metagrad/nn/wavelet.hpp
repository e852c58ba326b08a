// SPDX-License-Identifier: MIT
// A learnable 2-D discrete wavelet transform (the DWT2d of adaptive wavelet distillation, Ha, Singh
// et al., NeurIPS 2021): one low-pass filter h0 is the parameter, the high-pass filter is derived
// from it by the alternating flip h1[n] = (−1)^n h0[L−1−n], and each level filters the rows, then
// the columns, with h0 and h1 and keeps every second sample. J levels give the approximation (the
// low-low band of the last level) and, per level, three detail bands (LH, HL, HH).
//
// Boundary handling is the original's default and its MNIST demo's choice, mode 'zero': the
// signal is extended by zeros, L − 2 on each side (plus one more zero at the end of an odd-length
// axis), so an axis of N samples gives ⌊(N + L − 1)/2⌋ coefficients, as pywt's 'zero' mode does.
// That extension keeps the transform invertible for every N ≥ 1, so odd images are fine and no
// image is "too small": coefficients never shrink below L − 1 per axis, however many levels.
//
// h0 is the synthesis low-pass filter (pywt's rec_lo, the reversed dec_lo), used as the
// cross-correlation kernel of conv2d, as the original stores it. The inverse is the transposed
// convolution with the same filters, cropped to each level's size; with an orthonormal h0 it is
// the adjoint of the analysis and inverse(forward(x)) = x. Everything is reshape, concat, narrow,
// conv2d and conv_transpose2d, so the transform and any loss on it differentiate to any order, in
// the image and in h0.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "metagrad/core/creation.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/conv.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad::nn {

/// Daubechies' orthonormal low-pass filters as synthesis filters (rec_lo: dec_lo reversed), from
/// Daubechies, "Ten Lectures on Wavelets" (1992), Table 6.1, as tabulated to double precision in
/// PyWavelets (pywt/_extensions/c/wavelets_coeffs.template.h, "db2" and "db5" dec_lo, reversed
/// here). Σh = √2, Σh² = 1, and h is orthogonal to its own even shifts, to the table's own rounding
/// (db5: Σh² − 1 = 1.4e-12, even-shift products ≤ 3e-13), which bounds a double reconstruction.
namespace wavelets {
inline constexpr std::array<double, 4> db2 = {0.48296291314469025, 0.836516303737469, 0.22414386804185735,
                                              -0.12940952255092145};
inline constexpr std::array<double, 10> db5 = {
    0.160102397974125,    0.6038292697974729,  0.7243085284385744,    0.13842814590110342,   -0.24229488706619015,
    -0.03224486958502952, 0.07757149384006515, -0.006241490213011705, -0.012580751999015526, 0.003335725285001549};

/// One of the tables above as a 1-D tensor of T.
template <Floating T, std::size_t L>
Tensor<T> filter(const std::array<double, L>& h) {
  std::vector<T> v(h.begin(), h.end());
  return from_vector<T>(v);
}
}  // namespace wavelets

/// The coefficients of a J-level 2-D DWT of images [N, C, H, W]: low [N, C, h_J, w_J] (the
/// approximation) and highs[j] [N, C, 3, h_j, w_j] for levels j = 0 (finest) .. J − 1, the three
/// bands in the order LH (row low-pass, column high-pass), HL, HH, as the original's (yl, yh).
/// height and width are the image's, so the inverse knows where to crop.
template <Floating T>
struct WaveletCoeffs {
  Tensor<T> low;
  std::vector<Tensor<T>> highs;
  std::int64_t height = 0, width = 0;

  /// low, then highs[0], ..., highs[J−1]: the original's tuple (yl, yh_1, ..., yh_J).
  std::vector<Tensor<T>> tensors() const {
    std::vector<Tensor<T>> all{low};
    all.insert(all.end(), highs.begin(), highs.end());
    return all;
  }
  /// The same image sizes with other tensors (e.g. gradients w.r.t. these) in tensors()'s order.
  WaveletCoeffs with_tensors(std::span<const Tensor<T>> all) const {
    check(all.size() == highs.size() + 1, "WaveletCoeffs::with_tensors", "expected ", highs.size() + 1,
          " tensors (low + ", highs.size(), " levels), got ", all.size());
    return {all[0], std::vector<Tensor<T>>(all.begin() + 1, all.end()), height, width};
  }
  int levels() const { return static_cast<int>(highs.size()); }
};

namespace wavelet_detail {
inline void check_wavelet_filter(const Shape& h0, const char* op) {
  check(h0.rank() == 1, op, "the low-pass filter h0 must be 1-D [L], got ", h0);
  check(h0[0] >= 2 && h0[0] % 2 == 0, op, "the low-pass filter h0 ", h0,
        " must have an even length >= 2 (orthogonal wavelet filters have even length)");
}

/// The filter pair [h0; h1] as a conv2d weight [2, 1, L, 1] (column filtering) or [2, 1, 1, L] (rows).
template <Floating T>
Tensor<T> filter_bank(const Tensor<T>& h0, const Tensor<T>& h1, bool along_columns) {
  const std::int64_t l = h0.size(0);
  const auto both = stack(std::vector<Tensor<T>>{h0, h1}, 0);
  return reshape(both, along_columns ? Shape{2, 1, l, 1} : Shape{2, 1, 1, l});
}

/// One analysis step along one axis of x [M, 1, H, W]: [M, 2, ...] holding the low-pass and
/// high-pass halves. An odd axis gets one more zero at its end, as pywt's 'zero' mode.
template <Floating T>
Tensor<T> analysis_1d(Tensor<T> x, const Tensor<T>& bank, bool along_columns) {
  const int axis = along_columns ? 2 : 3;
  const std::int64_t l = bank.size(axis);
  if (x.size(axis) % 2 == 1) {
    Shape pad = x.shape();
    pad[axis] = 1;
    x = concat(std::vector<Tensor<T>>{x, zeros<T>(pad)}, axis);
  }
  const Size2d stride = along_columns ? Size2d{2, 1} : Size2d{1, 2};
  const Size2d padding = along_columns ? Size2d{l - 2, 0} : Size2d{0, l - 2};
  return conv2d(x, bank, {}, stride, padding);
}

/// One synthesis step along one axis of y [M, 2, ...] (low, high): [M, 1, ...], cropped to `extent`.
template <Floating T>
Tensor<T> synthesis_1d(const Tensor<T>& y, const Tensor<T>& bank, bool along_columns, std::int64_t extent) {
  const int axis = along_columns ? 2 : 3;
  const std::int64_t l = bank.size(axis);
  const Size2d stride = along_columns ? Size2d{2, 1} : Size2d{1, 2};
  const Size2d padding = along_columns ? Size2d{l - 2, 0} : Size2d{0, l - 2};
  auto x = conv_transpose2d(y, bank, {}, stride, padding);
  // The transposed convolution gives 2n + 2 − L samples: the level's size, or one more when an
  // odd axis was extended by a zero.
  return x.size(axis) > extent ? narrow(x, axis, 0, extent) : x;
}

/// ⌊(n + L − 1)/2⌋: the coefficients per axis of n samples (pywt.dwt_coeff_len, mode 'zero').
inline std::int64_t wavelet_coeff_len(std::int64_t n, std::int64_t l) { return (n + l - 1) / 2; }
}  // namespace wavelet_detail

/// The high-pass filter of an orthogonal wavelet from its low-pass one by the alternating flip,
/// h1[n] = (−1)^n h0[L−1−n] (the original's low_to_high).
template <Floating T>
Tensor<T> wavelet_highpass(const Tensor<T>& h0) {
  wavelet_detail::check_wavelet_filter(h0.shape(), "wavelet_highpass");
  std::vector<T> sign(static_cast<std::size_t>(h0.size(0)));
  for (std::size_t n = 0; n < sign.size(); ++n) sign[n] = n % 2 == 0 ? T(1) : T(-1);
  return mul(flip(h0, {0}), from_vector<T>(sign));
}

/// The J-level 2-D DWT of x [N, C, H, W] with low-pass filter h0 [L] (see the file comment).
template <Floating T>
WaveletCoeffs<T> dwt2d(const Tensor<T>& x, const Tensor<T>& h0, int levels) {
  constexpr const char* op = "dwt2d";
  wavelet_detail::check_wavelet_filter(h0.shape(), op);
  check(x.dim() == 4, op, "input must be 4-D [N, C, H, W], got ", x.shape());
  check(x.numel() > 0, op, "input ", x.shape(), " is empty");
  check(levels >= 1, op, "levels must be >= 1, got ", levels, " (input ", x.shape(), ", filter ", h0.shape(), ")");
  const std::int64_t n = x.size(0), c = x.size(1);
  const auto h1 = wavelet_highpass(h0);
  const auto rows = wavelet_detail::filter_bank(h0, h1, false), cols = wavelet_detail::filter_bank(h0, h1, true);
  WaveletCoeffs<T> out{{}, {}, x.size(2), x.size(3)};
  // Each image channel is transformed alone: fold the channels into the batch.
  auto ll = reshape(x, Shape{n * c, 1, x.size(2), x.size(3)});
  for (int j = 0; j < levels; ++j) {
    const std::int64_t m = ll.size(0);
    auto lohi = wavelet_detail::analysis_1d(ll, rows, false);           // [m, 2, H, w']
    lohi = reshape(lohi, Shape{2 * m, 1, lohi.size(2), lohi.size(3)});  // each half alone
    auto bands = wavelet_detail::analysis_1d(lohi, cols, true);         // [2m, 2, h', w']
    bands = reshape(bands, Shape{m, 4, bands.size(2), bands.size(3)});  // LL, LH, HL, HH
    const std::int64_t h = bands.size(2), w = bands.size(3);
    out.highs.push_back(reshape(narrow(bands, 1, 1, 3), Shape{n, c, 3, h, w}));
    ll = narrow(bands, 1, 0, 1);
  }
  out.low = reshape(ll, Shape{n, c, ll.size(2), ll.size(3)});
  return out;
}

/// The inverse of dwt2d with the same h0: images [N, C, height, width].
template <Floating T>
Tensor<T> idwt2d(const WaveletCoeffs<T>& coeffs, const Tensor<T>& h0) {
  constexpr const char* op = "idwt2d";
  wavelet_detail::check_wavelet_filter(h0.shape(), op);
  check(coeffs.levels() >= 1, op, "no detail levels given");
  check(coeffs.low.defined() && coeffs.low.dim() == 4, op, "low must be 4-D [N, C, h, w], got ",
        coeffs.low.defined() ? coeffs.low.shape().str() : "an undefined tensor");
  check(coeffs.height >= 1 && coeffs.width >= 1, op, "image size ", coeffs.height, "x", coeffs.width,
        " must be positive");
  const std::int64_t l = h0.size(0), n = coeffs.low.size(0), c = coeffs.low.size(1);
  // Each level's size, finest first: what the inverse crops to, and what the bands must measure.
  std::vector<std::pair<std::int64_t, std::int64_t>> sizes{{coeffs.height, coeffs.width}};
  for (int j = 0; j < coeffs.levels(); ++j)
    sizes.emplace_back(wavelet_detail::wavelet_coeff_len(sizes.back().first, l),
                       wavelet_detail::wavelet_coeff_len(sizes.back().second, l));
  const auto expect = [&](const Tensor<T>& t, Shape want, const char* what, int level) {
    check(t.defined() && t.shape() == want, op, what, " of level ", level, " should be ", want, " for images of ",
          coeffs.height, "x", coeffs.width, " with a filter of length ", l, ", got ",
          t.defined() ? t.shape().str() : "an undefined tensor");
  };
  const auto [hj, wj] = sizes.back();
  expect(coeffs.low, Shape{n, c, hj, wj}, "low", coeffs.levels() - 1);
  const auto h1 = wavelet_highpass(h0);
  const auto rows = wavelet_detail::filter_bank(h0, h1, false), cols = wavelet_detail::filter_bank(h0, h1, true);
  auto ll = reshape(coeffs.low, Shape{n * c, 1, hj, wj});
  for (int j = coeffs.levels() - 1; j >= 0; --j) {
    const auto [h, w] = sizes[static_cast<std::size_t>(j + 1)];
    const auto [target_h, target_w] = sizes[static_cast<std::size_t>(j)];
    expect(coeffs.highs[static_cast<std::size_t>(j)], Shape{n, c, 3, h, w}, "highs", j);
    const auto highs = reshape(coeffs.highs[static_cast<std::size_t>(j)], Shape{n * c, 3, h, w});
    // (LL, LH) and (HL, HH) are each a (low, high) pair along the columns.
    auto bands = reshape(concat(std::vector<Tensor<T>>{ll, highs}, 1), Shape{2 * n * c, 2, h, w});
    auto lohi = wavelet_detail::synthesis_1d(bands, cols, true, target_h);  // [2nc, 1, H, w]
    lohi = reshape(lohi, Shape{n * c, 2, lohi.size(2), w});                 // (low, high) along the rows
    ll = wavelet_detail::synthesis_1d(lohi, rows, false, target_w);         // [nc, 1, H, W]
  }
  return reshape(ll, Shape{n, c, coeffs.height, coeffs.width});
}

/// The learnable transform: parameter h0 (initialised from a filter table, optionally plus noise),
/// J levels. forward gives the coefficients, inverse the images.
template <Floating T = float>
class DWT2d final : public Module<T> {
 public:
  /// h0 starts as a copy of `init` (e.g. wavelets::filter<T>(wavelets::db5)).
  DWT2d(const Tensor<T>& init, int levels) : levels_(levels) {
    wavelet_detail::check_wavelet_filter(init.shape(), "DWT2d");
    check(levels >= 1, "DWT2d", "levels must be >= 1, got ", levels);
    h0 = clone(init.detach());
    this->register_parameter("h0", h0);
  }

  WaveletCoeffs<T> forward(const Tensor<T>& x) const { return dwt2d(x, h0, levels_); }
  WaveletCoeffs<T> operator()(const Tensor<T>& x) const { return forward(x); }
  Tensor<T> inverse(const WaveletCoeffs<T>& coeffs) const { return idwt2d(coeffs, h0); }
  Tensor<T> h1() const { return wavelet_highpass(h0); }
  int levels() const { return levels_; }

  Tensor<T> h0;  // [L], the synthesis low-pass filter

 private:
  int levels_;
};

}  // namespace metagrad::nn
