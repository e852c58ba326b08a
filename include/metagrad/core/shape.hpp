// SPDX-License-Identifier: MIT
// Shape: up to kMaxRank extents held inline, so creating a tensor never allocates for its shape.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "metagrad/core/error.hpp"

namespace metagrad {

inline constexpr int kMaxRank = 8;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) : Shape(std::span<const std::int64_t>(dims.begin(), dims.size())) {}
  explicit Shape(std::span<const std::int64_t> dims) {
    check(dims.size() <= static_cast<std::size_t>(kMaxRank), "Shape", "rank ", dims.size(), " exceeds the maximum ", kMaxRank);
    for (auto d : dims) push_back(d);
  }
  explicit Shape(const std::vector<std::int64_t>& dims) : Shape(std::span<const std::int64_t>(dims)) {}

  int rank() const { return rank_; }
  std::int64_t operator[](int i) const { return dims_[static_cast<std::size_t>(i)]; }
  std::int64_t& operator[](int i) { return dims_[static_cast<std::size_t>(i)]; }
  const std::int64_t* begin() const { return dims_.data(); }
  const std::int64_t* end() const { return dims_.data() + rank_; }
  std::span<const std::int64_t> dims() const { return {dims_.data(), static_cast<std::size_t>(rank_)}; }
  std::vector<std::int64_t> vec() const { return {begin(), end()}; }

  void push_back(std::int64_t d) {
    check(rank_ < kMaxRank, "Shape", "rank exceeds the maximum ", kMaxRank);
    check(d >= 0, "Shape", "negative extent ", d);
    dims_[static_cast<std::size_t>(rank_++)] = d;
  }

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }

  /// Row-major strides, in elements.
  std::array<std::int64_t, kMaxRank> strides() const {
    std::array<std::int64_t, kMaxRank> s{};
    std::int64_t acc = 1;
    for (int i = rank_ - 1; i >= 0; --i) {
      s[static_cast<std::size_t>(i)] = acc;
      acc *= dims_[static_cast<std::size_t>(i)];
    }
    return s;
  }

  friend bool operator==(const Shape& a, const Shape& b) {
    return a.rank_ == b.rank_ && std::equal(a.begin(), a.end(), b.begin());
  }

  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[static_cast<std::size_t>(i)]);
    }
    return s + "]";
  }
  friend std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

 private:
  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

/// Resolves a possibly negative dim against `rank`; throws naming `op` when out of range.
inline int normalize_dim(std::int64_t dim, int rank, const char* op) {
  // As in PyTorch, a scalar accepts dim 0 and -1, as if it had rank 1.
  const int wrap = std::max(rank, 1);
  check(dim >= -wrap && dim < wrap, op, "dim ", dim, " is out of range for a tensor of rank ", rank);
  return static_cast<int>(dim < 0 ? dim + wrap : dim);
}

/// NumPy broadcasting of two shapes; throws naming `op` and both shapes when they do not broadcast.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int r = std::max(a.rank(), b.rank());
  Shape out;
  for (int i = 0; i < r; ++i) {
    const int ia = i - (r - a.rank()), ib = i - (r - b.rank());
    const std::int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    check(da == db || da == 1 || db == 1, op, "shapes ", a, " and ", b, " cannot be broadcast together (dim ", i,
          ": ", da, " vs ", db, ")");
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

}  // namespace metagrad
