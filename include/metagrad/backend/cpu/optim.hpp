// SPDX-License-Identifier: MIT
// The optimizers' element-wise update loops: one pass over a parameter, its gradient and its state,
// no allocation. Each loop performs exactly the roundings the op-by-op differentiable optimizers
// (optim/differentiable.hpp) perform, one per operation, so that a first-order differentiable step
// equals an ordinary step bit for bit. That is why these functions forbid floating-point
// contraction: with -ffp-contract=fast (GCC's default outside strict ISO mode) or Clang's
// contract(on), `p - d * lr` would become one fused multiply-add with a different last bit.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "metagrad/backend/cpu/parallel.hpp"
#include "metagrad/backend/types.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::cpu {

using backend::AdamCoefficients;
using backend::SgdCoefficients;

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
// no-math-errno lets sqrt vectorise (sqrt of a negative never happens here: v >= 0 or NaN).
#pragma GCC optimize("fp-contract=off", "no-math-errno")
#endif

/// x = sqrt(x), correctly rounded and vectorised. The loop form would not vectorise: std::sqrt
/// must set errno for negative input (unless the whole program is built with -fno-math-errno,
/// which a per-function option cannot give), and Eigen's packet sqrt is an approximation under
/// EIGEN_FAST_MATH (its default) on AVX-512. The sqrt instructions are exact (IEEE 754).
template <class T>
void sqrt_in_place(T* x, std::int64_t n) {
  std::int64_t i = 0;
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4)
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_sqrt_ps(_mm512_loadu_ps(x + i)));
  else
    for (; i + 8 <= n; i += 8) _mm512_storeu_pd(x + i, _mm512_sqrt_pd(_mm512_loadu_pd(x + i)));
#elif defined(__AVX__)
  if constexpr (sizeof(T) == 4)
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_sqrt_ps(_mm256_loadu_ps(x + i)));
  else
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(x + i, _mm256_sqrt_pd(_mm256_loadu_pd(x + i)));
#elif defined(__SSE2__)
  if constexpr (sizeof(T) == 4)
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(x + i, _mm_sqrt_ps(_mm_loadu_ps(x + i)));
  else
    for (; i + 2 <= n; i += 2) _mm_storeu_pd(x + i, _mm_sqrt_pd(_mm_loadu_pd(x + i)));
#endif
  for (; i < n; ++i) x[i] = std::sqrt(x[i]);
}

/// p -= lr * direction, where direction is the (decayed, momentum) gradient; buf is the momentum
/// buffer (unused without momentum). Works on [0, n); callers split large tensors across threads.
template <class T>
void sgd_update(T* p, const T* g, T* buf, std::int64_t n, const SgdCoefficients<T>& coefficients) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  const SgdCoefficients<T> c = coefficients;  // a local copy cannot alias p or buf
  // One loop per case, so that each is a straight vectorised loop without branches.
  auto run = [&](auto direction) {
    for (std::int64_t i = 0; i < n; ++i) p[i] = p[i] - direction(i) * c.lr;
  };
  auto decayed = [&](std::int64_t i) { return c.weight_decay != T(0) ? g[i] + p[i] * c.weight_decay : g[i]; };
  if (c.momentum == T(0)) {
    if (c.weight_decay == T(0)) run([&](std::int64_t i) { return g[i]; });
    else run([&](std::int64_t i) { return g[i] + p[i] * c.weight_decay; });
    return;
  }
  auto with_momentum = [&](auto new_buffer) {
    if (c.nesterov)
      run([&](std::int64_t i) {
        const T d = decayed(i), b = new_buffer(i, d);
        buf[i] = b;
        return d + b * c.momentum;
      });
    else
      run([&](std::int64_t i) { return buf[i] = new_buffer(i, decayed(i)); });
  };
  if (c.first_step) with_momentum([](std::int64_t, T d) { return d; });
  else if (c.dampening_keep == T(1)) with_momentum([&](std::int64_t i, T d) { return buf[i] * c.momentum + d; });
  else with_momentum([&](std::int64_t i, T d) { return buf[i] * c.momentum + d * c.dampening_keep; });
}

/// One Adam/AdamW step on [0, n): m, v are the first and second moment estimates. It works in
/// blocks that stay in L1: the moments first, then their square roots, then the parameters.
template <class T>
void adam_update(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamCoefficients<T>& coefficients) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  const AdamCoefficients<T> c = coefficients;  // a local copy cannot alias the arrays
  constexpr std::int64_t kBlock = 256;
  T root[kBlock];
  const bool decay = c.weight_decay != T(0);
  for (std::int64_t b = 0; b < n; b += kBlock) {
    const std::int64_t len = n - b < kBlock ? n - b : kBlock;
    T* pb = p + b;
    const T* gb = g + b;
    T* mb = m + b;
    T* vb = v + b;
    for (std::int64_t i = 0; i < len; ++i) {
      T gi = gb[i];
      if (decay) gi = gi + pb[i] * c.weight_decay;
      mb[i] = mb[i] * c.beta1 + gi * c.one_minus_beta1;
      root[i] = vb[i] = vb[i] * c.beta2 + (gi * gi) * c.one_minus_beta2;
    }
    sqrt_in_place(root, len);
    for (std::int64_t i = 0; i < len; ++i) {
      const T pi = c.decoupled ? pb[i] * c.decay_keep : pb[i];
      const T denom = root[i] * c.inv_sqrt_bias_correction2 + c.eps;
      pb[i] = pi - (mb[i] / denom) * c.step_size;
    }
  }
}

/// Sum of squares accumulated in double (for the global gradient norm).
template <class T>
double sum_of_squares(const T* x, std::int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // four chains: vectorisable and more accurate
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    s1 += static_cast<double>(x[i + 1]) * static_cast<double>(x[i + 1]);
    s2 += static_cast<double>(x[i + 2]) * static_cast<double>(x[i + 2]);
    s3 += static_cast<double>(x[i + 3]) * static_cast<double>(x[i + 3]);
  }
  for (; i < n; ++i) s0 += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return (s0 + s1) + (s2 + s3);
}

/// Largest absolute value (the infinity norm); NaN propagates.
template <class T>
double max_abs(const T* x, std::int64_t n) {
  double m = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double a = std::abs(static_cast<double>(x[i]));
    if (std::isnan(a)) return a;
    if (a > m) m = a;
  }
  return m;
}

template <class T>
void scale(T* x, std::int64_t n, T s) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] * s;
}

/// Clamps into [lo, hi]; NaN stays NaN (as torch.clamp does).
template <class T>
void clamp(T* x, std::int64_t n, T lo, T hi) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

}  // namespace metagrad::cpu

// ---- the loops over whole tensors, split across threads ----
namespace metagrad::cpu {

/// Elements per thread chunk of an update loop.
inline constexpr std::int64_t kUpdateGrain = 1 << 15;

/// One SGD step of p with gradient g; buf is the momentum buffer (null without momentum), which
/// the step fills rather than reads when c.first_step.
template <class T>
void sgd_step(T* p, const T* g, T* buf, std::int64_t n, const SgdCoefficients<T>& c) {
  parallel_for(n, kUpdateGrain, [&](std::int64_t b, std::int64_t e) {
    sgd_update(p + b, g + b, buf ? buf + b : nullptr, e - b, c);
  });
}

/// One Adam step of p with gradient g and moments m, v.
template <class T>
void adam_step(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamCoefficients<T>& c) {
  parallel_for(n, kUpdateGrain, [&](std::int64_t b, std::int64_t e) { adam_update(p + b, g + b, m + b, v + b, e - b, c); });
}

}  // namespace metagrad::cpu
