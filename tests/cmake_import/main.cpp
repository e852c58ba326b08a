// SPDX-License-Identifier: MIT
// Built against an installed metagrad: computes a gradient and a Hessian-vector product (grad of
// grad) of f(w) = sum(exp(w)) + sum(w)^2 / 2 and checks both against their closed forms
//   grad f = exp(w) + sum(w),   H v = exp(w) * v + sum(v),
// and a 24x24 product (large enough for the BLAS path, so with METAGRAD_WITH_OPENBLAS it calls
// cblas_dgemm and the link needs OpenBLAS) against a naive loop. Prints which GEMM it was built
// with (tests/package/relocate.cmake checks that line); exits non-zero on a mismatch.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <metagrad/metagrad.hpp>

using namespace metagrad;

int main() {
  Generator gen(7);
  const auto w = randn<double>({5}, gen).requires_grad_();
  const auto v = randn<double>({5}, gen);

  const auto f = add(sum(exp(w)), mul(square(sum(w)), 0.5));
  const auto g = grad(f, w, {.create_graph = true});
  const auto hv = grad(sum(mul(g, v)), w);  // d/dw <grad f(w), v> = H v

  double sum_w = 0, sum_v = 0;
  for (std::int64_t i = 0; i < 5; ++i) sum_w += w(i), sum_v += v(i);
  double grad_err = 0, hvp_err = 0;
  for (std::int64_t i = 0; i < 5; ++i) {
    grad_err = std::max(grad_err, std::abs(g(i) - (std::exp(w(i)) + sum_w)));
    hvp_err = std::max(hvp_err, std::abs(hv(i) - (std::exp(w(i)) * v(i) + sum_v)));
  }

  constexpr std::int64_t n = 24;
  const auto a = randn<double>({n, n}, gen), b = randn<double>({n, n}, gen);
  const auto c = mm(a, b);
  double mm_err = 0;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double cij = 0;
      for (std::int64_t l = 0; l < n; ++l) cij += a(i, l) * b(l, j);
      mm_err = std::max(mm_err, std::abs(c(i, j) - cij));
    }

#if METAGRAD_WITH_OPENBLAS
  std::puts("metagrad consumer: GEMM: OpenBLAS");
#else
  std::puts("metagrad consumer: GEMM: Eigen");
#endif
  const bool ok = grad_err < 1e-12 && hvp_err < 1e-12 && mm_err < 1e-12;
  std::printf("metagrad consumer: gradient max error %.1e, Hessian-vector product max error %.1e, "
              "product max error %.1e: %s\n",
              grad_err, hvp_err, mm_err, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
