// SPDX-License-Identifier: MIT
// parallel_for for the CPU kernels (the thread count itself is in backend/threads.hpp): loops split
// into contiguous chunks across OpenMP threads only when the work is large enough to pay for it.
#pragma once
#include <algorithm>
#include <cstdint>

#include "metagrad/backend/threads.hpp"
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace metagrad::cpu {

/// Calls fn(begin, end) over [0, n) in chunks, in parallel when n >= grain and threads > 1.
template <class Fn>
void parallel_for(std::int64_t n, std::int64_t grain, Fn&& fn) {
#if defined(_OPENMP)
  const int threads = static_cast<int>(std::min<std::int64_t>(num_threads(), n / std::max<std::int64_t>(grain, 1)));
  if (threads > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads)
    {
      const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const std::int64_t begin = n * t / nt, end = n * (t + 1) / nt;
      if (begin < end) fn(begin, end);
    }
    return;
  }
#endif
  if (n > 0) fn(std::int64_t{0}, n);
}

}  // namespace metagrad::cpu
