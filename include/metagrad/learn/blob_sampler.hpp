// SPDX-License-Identifier: MIT
// The regions CDEP and its baselines penalize ("blobs"), and where they come from. A blob set is a
// tensor [B, ...] whose every blobs[b] broadcasts to the input batch x [N, ...]: [B, 1, 1, H, W]
// is B spatial masks shared by every example, [1, N, 1, H, W] one mask per example (the batch's own
// annotation). Two sources:
//  - BlobSampler: CDEP's ColorMNIST (laura-rieger/deep-explanation-penalization,
//    mnist/ColorMNIST/train.py): every batch, 8 single-pixel blobs drawn with replacement with
//    probability equal to the pixel's foreground frequency in train (np.random.choice(784, 8, p)).
//  - blobs_from_batch: the batch's mask as its one blob (CDEP's DecoyMNIST: the four corners).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "metagrad/core/creation.hpp"
#include "metagrad/core/error.hpp"
#include "metagrad/core/random.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/ops/broadcast.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad::learn {

/// Draws single-pixel blobs over an H × W plane, pixel p with probability probabilities[p]
/// (non-negative, normalized here), independently and with replacement, from a seeded generator.
class BlobSampler {
 public:
  BlobSampler(std::vector<double> probabilities, std::int64_t height, std::int64_t width, std::int64_t per_batch,
              std::uint64_t seed)
      : height_(height), width_(width), per_batch_(per_batch), gen_(seed) {
    constexpr const char* op = "BlobSampler";
    check(height > 0 && width > 0, op, "needs a plane of positive size, got ", height, " x ", width);
    check(static_cast<std::int64_t>(probabilities.size()) == height * width, op, "needs one probability per pixel (",
          height * width, " for ", height, " x ", width, "), got ", probabilities.size());
    check(per_batch > 0, op, "per_batch must be > 0, got ", per_batch);
    double total = 0;
    for (double p : probabilities) {
      check(std::isfinite(p) && p >= 0, op, "probabilities must be finite and >= 0, got ", p);
      total += p;
    }
    check(total > 0, op, "the probabilities sum to 0: no pixel can be drawn");
    cumulative_.reserve(probabilities.size());
    double run = 0;
    for (double p : probabilities) cumulative_.push_back(run += p / total);
    cumulative_.back() = 1.0;  // rounding must not leave the last pixel unreachable
  }

  /// per_batch pixel indices (row-major, r·W + c).
  std::vector<std::int64_t> draw_pixels() {
    std::vector<std::int64_t> out;
    for (std::int64_t k = 0; k < per_batch_; ++k) {
      const double u = gen_.uniform();
      const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
      out.push_back(static_cast<std::int64_t>(it - cumulative_.begin()));
    }
    return out;
  }

  /// per_batch one-hot masks [per_batch, 1, 1, H, W]: blobs shared by every example of a batch of
  /// images [N, C, H, W].
  template <Floating T>
  Tensor<T> draw() {
    auto m = zeros<T>(Shape{per_batch_, 1, 1, height_, width_});
    T* p = m.fresh_data();
    const auto pixels = draw_pixels();
    for (std::int64_t k = 0; k < per_batch_; ++k) p[k * height_ * width_ + pixels[static_cast<std::size_t>(k)]] = T(1);
    return m;
  }

  std::int64_t per_batch() const { return per_batch_; }

 private:
  std::int64_t height_, width_, per_batch_;
  std::vector<double> cumulative_;
  Generator gen_;
};

/// Where a loss gets the blobs of a batch.
template <Floating T>
using BlobSource = std::function<Tensor<T>(const Batch<T>&)>;

/// The batch's own mask (x's shape [N, ...]) as one blob per example: [1, N, ...].
template <Floating T>
BlobSource<T> blobs_from_batch() {
  return [](const Batch<T>& b) {
    detail::check_masked_batch(b, "blobs_from_batch");
    return unsqueeze(b.mask, 0);
  };
}

/// Fresh blobs from a sampler for every batch (shared, so a copied loss keeps drawing one stream).
template <Floating T>
BlobSource<T> blobs_from_sampler(std::shared_ptr<BlobSampler> sampler) {
  check(sampler != nullptr, "blobs_from_sampler", "needs a sampler, got none");
  return [sampler](const Batch<T>&) { return sampler->template draw<T>(); };
}

namespace detail {

/// blobs [B, ...] with every blobs[b] broadcasting to x [N, ...].
template <Floating T>
void check_blobs(const Tensor<T>& x, const Tensor<T>& blobs, const char* op) {
  check(x.defined() && x.dim() >= 1 && x.size(0) > 0, op, "needs a non-empty batch of inputs [N, ...], got ",
        x.defined() ? x.shape() : Shape{});
  check(blobs.defined() && blobs.dim() == x.dim() + 1 && blobs.size(0) > 0, op,
        "needs blobs [B, ...] of rank ", x.dim() + 1, " (one mask per blob, each broadcasting to the inputs ", x.shape(),
        "), got ", blobs.defined() ? blobs.shape() : Shape{});
  Shape each;
  for (int d = 1; d < blobs.dim(); ++d) each.push_back(blobs.size(d));
  bool fits = true;
  for (int d = 0; d < x.dim(); ++d) fits = fits && (each[d] == 1 || each[d] == x.size(d));
  check(fits, op, "blobs ", blobs.shape(), ": each blob ", each, " must broadcast to the inputs ", x.shape());
}

/// Spatial blobs for image inputs: blobs [B, N|1, 1, H, W] for x [N, C, H, W] (the gradient
/// baselines sum their attributions over the channels before masking, as CDEP's code does).
template <Floating T>
void check_spatial_blobs(const Tensor<T>& x, const Tensor<T>& blobs, const char* op) {
  check(x.defined() && x.dim() == 4, op, "needs images [N, C, H, W], got ", x.defined() ? x.shape() : Shape{});
  check_blobs(x, blobs, op);
  check(blobs.size(3) == x.size(2) && blobs.size(4) == x.size(3) && blobs.size(2) == 1, op, "needs spatial blobs [B, ",
        x.size(0), " or 1, 1, ", x.size(2), ", ", x.size(3), "] for the inputs ", x.shape(), ", got ", blobs.shape());
}

}  // namespace detail
}  // namespace metagrad::learn
