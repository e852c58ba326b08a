// SPDX-License-Identifier: MIT
// An in-memory data set (inputs, labels and optional explanation masks, row i of each belonging
// together), seeded splits, and a batch loader whose order depends only on (seed, epoch), so a run
// is reproducible and an epoch can be replayed without replaying the ones before it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "metagrad/core/error.hpp"
#include "metagrad/core/random.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::data {

/// Rows `index` of `t` along dim 0, copied into a new contiguous tensor of shape [index.size(), ...].
template <Element T>
Tensor<T> take_rows(const Tensor<T>& t, std::span<const std::int64_t> index, const char* op = "take_rows") {
  check(t.dim() >= 1, op, "needs a tensor of rank >= 1, got shape ", t.shape());
  const std::int64_t n = t.size(0), row = n == 0 ? 0 : t.numel() / n;
  Shape shape = t.shape();
  shape[0] = static_cast<std::int64_t>(index.size());
  auto out = Tensor<T>::empty(shape);
  T* dst = out.fresh_data();
  for (std::size_t i = 0; i < index.size(); ++i) {
    check(index[i] >= 0 && index[i] < n, op, "index ", index[i], " is out of range for ", n, " rows (shape ",
          t.shape(), ")");
    std::memcpy(dst + static_cast<std::int64_t>(i) * row, t.data() + index[i] * row, sizeof(T) * row);
  }
  return out;
}

/// Inputs [N, ...] with labels [N] and, optionally, masks of the inputs' shape marking the features a
/// human annotated as irrelevant (1 = irrelevant: the decoy half, the patch corners) for
/// explanation losses such as RRR. `masks` is an undefined tensor when there are none.
template <Floating T = float>
struct Dataset {
  Tensor<T> inputs;
  IndexTensor labels;
  Tensor<T> masks;

  std::int64_t size() const { return labels.defined() ? labels.numel() : 0; }
  bool has_masks() const { return masks.defined(); }

  /// Throws naming `op` unless the parts fit together.
  void validate(const char* op = "Dataset") const {
    check(inputs.defined() && labels.defined(), op, "a data set needs both inputs and labels");
    check(labels.dim() == 1, op, "labels must have shape [N], got ", labels.shape());
    check(inputs.dim() >= 1 && inputs.size(0) == labels.size(0), op, "inputs of shape ", inputs.shape(),
          " do not match labels of shape ", labels.shape());
    if (masks.defined())
      check(masks.shape() == inputs.shape(), op, "masks of shape ", masks.shape(), " do not match inputs of shape ",
            inputs.shape());
  }

  /// The examples `index` (in that order), copied.
  Dataset subset(std::span<const std::int64_t> index) const {
    validate("Dataset::subset");
    Dataset out{take_rows(inputs, index, "Dataset::subset"), take_rows(labels, index, "Dataset::subset"), {}};
    if (masks.defined()) out.masks = take_rows(masks, index, "Dataset::subset");
    return out;
  }
};

namespace detail {
inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace detail

/// A uniformly random permutation of 0..n-1 (Fisher-Yates with the portable Generator), the same
/// on every platform for a given seed.
inline std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed) {
  check(n >= 0, "permutation", "n must be >= 0, got ", n);
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), std::int64_t{0});
  Generator gen(seed);
  for (std::int64_t i = n - 1; i > 0; --i)
    std::swap(p[static_cast<std::size_t>(i)], p[gen.below(static_cast<std::uint64_t>(i) + 1)]);
  return p;
}

/// Splits `data` at random into consecutive parts of the given sizes (which must add up to its size).
template <class D>
std::vector<D> random_split(const D& data, const std::vector<std::int64_t>& sizes, std::uint64_t seed) {
  std::int64_t total = 0;
  for (auto s : sizes) {
    check(s >= 0, "random_split", "sizes must be >= 0, got ", s);
    total += s;
  }
  check(total == data.size(), "random_split", "sizes add up to ", total, " but the data set has ", data.size(),
        " examples");
  const auto order = permutation(data.size(), seed);
  std::vector<D> parts;
  std::size_t at = 0;
  for (auto s : sizes) {
    parts.push_back(data.subset(std::span(order).subspan(at, static_cast<std::size_t>(s))));
    at += static_cast<std::size_t>(s);
  }
  return parts;
}

/// Mini-batches over a data set D (anything with size() and subset(indices)): every example exactly
/// once per epoch (the last batch is smaller unless drop_last), in an order that depends only on
/// (seed, epoch).  Usage:  for (const auto& batch : loader.epoch(e)) { ... batch.inputs ... }
template <class D>
class Loader {
 public:
  Loader(D data, std::int64_t batch_size, std::uint64_t seed, bool shuffle = true, bool drop_last = false)
      : data_(std::move(data)), batch_size_(batch_size), seed_(seed), shuffle_(shuffle), drop_last_(drop_last) {
    check(batch_size > 0, "Loader", "batch_size must be > 0, got ", batch_size);
  }

  const D& data() const { return data_; }
  std::int64_t batch_size() const { return batch_size_; }
  std::int64_t batches_per_epoch() const {
    const std::int64_t n = data_.size();
    return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
  }

  /// The example order of epoch `e` (identity when not shuffling).
  std::vector<std::int64_t> order(std::int64_t e) const {
    if (!shuffle_) return permutation_identity(data_.size());
    return permutation(data_.size(), detail::splitmix64(seed_ ^ detail::splitmix64(static_cast<std::uint64_t>(e))));
  }

  /// One epoch's batches. It holds its own handle to the data (tensors are shared, not copied), so
  /// it stays valid after the Loader is gone: for (auto b : Loader(ds, 64, 1).epoch(0)) is fine.
  class Epoch {
   public:
    class iterator {
     public:
      iterator(const Epoch* epoch, std::int64_t b) : epoch_(epoch), b_(b) {}
      D operator*() const { return epoch_->batch(b_); }
      iterator& operator++() {
        ++b_;
        return *this;
      }
      bool operator==(const iterator& o) const { return b_ == o.b_; }

     private:
      const Epoch* epoch_;
      std::int64_t b_;
    };
    Epoch(D data, std::int64_t batch_size, std::int64_t batches, std::vector<std::int64_t> order)
        : data_(std::move(data)), batch_size_(batch_size), batches_(batches), order_(std::move(order)) {}
    std::int64_t size() const { return batches_; }
    /// The example indices of batch b.
    std::span<const std::int64_t> indices(std::int64_t b) const {
      check(b >= 0 && b < size(), "Loader::Epoch", "batch ", b, " is out of range for ", size(), " batches");
      const std::int64_t start = b * batch_size_;
      const std::int64_t len = std::min<std::int64_t>(batch_size_, static_cast<std::int64_t>(order_.size()) - start);
      return std::span(order_).subspan(static_cast<std::size_t>(start), static_cast<std::size_t>(len));
    }
    D batch(std::int64_t b) const { return data_.subset(indices(b)); }
    iterator begin() const { return {this, 0}; }
    iterator end() const { return {this, size()}; }

   private:
    D data_;
    std::int64_t batch_size_, batches_;
    std::vector<std::int64_t> order_;
  };

  /// The batches of epoch `e`.
  Epoch epoch(std::int64_t e) const { return Epoch(data_, batch_size_, batches_per_epoch(), order(e)); }

 private:
  static std::vector<std::int64_t> permutation_identity(std::int64_t n) {
    std::vector<std::int64_t> p(static_cast<std::size_t>(n));
    std::iota(p.begin(), p.end(), std::int64_t{0});
    return p;
  }

  D data_;
  std::int64_t batch_size_;
  std::uint64_t seed_;
  bool shuffle_, drop_last_;
};

}  // namespace metagrad::data
