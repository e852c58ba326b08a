// SPDX-License-Identifier: MIT
// The sparsemax forward kernel along one dim (Martins & Astudillo 2016): the Euclidean projection
// of each slice onto the probability simplex, max(z - τ, 0) with τ chosen so the slice sums to 1.
// τ comes from the slice sorted in descending order: the support is the largest k with
// 1 + k·z_(k) > Σ_{j<=k} z_(j). Sorting costs O(n log n) per slice, fine for the head/token
// counts sparsemax is used on.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "metagrad/backend/cpu/parallel.hpp"
#include "metagrad/backend/cpu/reduce.hpp"

namespace metagrad::cpu {

/// out = sparsemax(x) along the dim that `v` describes; x and out are contiguous, same shape.
template <class T>
void sparsemax_dim(const T* x, T* out, const ReduceView& v) {
  const std::int64_t n = v.extent;
  if (n == 0) return;
  parallel_for(v.outer * v.inner, std::max<std::int64_t>(1, 4096 / n), [&](std::int64_t b, std::int64_t e) {
    std::vector<T> sorted(static_cast<std::size_t>(n));  // one scratch row per task
    for (std::int64_t s = b; s < e; ++s) {
      const std::int64_t o = s / v.inner, i = s % v.inner;
      const T* src = x + o * n * v.inner + i;
      T* dst = out + o * n * v.inner + i;
      for (std::int64_t k = 0; k < n; ++k) sorted[k] = src[k * v.inner];
      std::sort(sorted.begin(), sorted.end(), std::greater<T>());
      T cumulative = 0, support_sum = 0;
      std::int64_t support = 0;
      for (std::int64_t k = 0; k < n; ++k) {
        cumulative += sorted[k];
        if (T(1) + T(k + 1) * sorted[k] > cumulative) {
          support = k + 1;
          support_sum = cumulative;
        }
      }
      const T tau = (support_sum - T(1)) / T(support);
      for (std::int64_t k = 0; k < n; ++k) dst[k * v.inner] = std::max(src[k * v.inner] - tau, T(0));
    }
  });
}

}  // namespace metagrad::cpu
