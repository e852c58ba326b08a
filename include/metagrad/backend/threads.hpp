// SPDX-License-Identifier: MIT
// How many threads metagrad's kernels (and Eigen's products) use: the user-facing knob, kept
// apart from the CPU kernels so programs and tests set it without including a device backend.
#pragma once
#include <algorithm>

#include <Eigen/Core>
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace metagrad {

/// Number of threads metagrad's kernels (and Eigen's products) use.
inline int num_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline void set_num_threads(int n) {
  n = std::max(1, n);
#if defined(_OPENMP)
  omp_set_num_threads(n);
#endif
  Eigen::setNbThreads(n);
}

}  // namespace metagrad
