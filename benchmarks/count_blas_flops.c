// SPDX-License-Identifier: MIT
// LD_PRELOAD shim: counts the FLOPs (2 m n k) of every cblas_sgemm/cblas_dgemm call a program makes
// and forwards the call to the real OpenBLAS; prints the totals to stderr at exit. profile_workloads.py
// (--blas-flops) runs one metagrad step under it, to set metagrad's own products beside the FLOPs
// PyTorch's step does. Products metagrad keeps off BLAS (its direct narrow-GEMM kernel, matrix-vector
// and tiny products on Eigen) are not seen here.
//   cc -O2 -shared -fPIC -o count_blas_flops.so count_blas_flops.c -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double*, int, const double*, int, double, double*,
                         int);

static double sgemm_flops, dgemm_flops;
static long sgemm_calls, dgemm_calls;

static void report(void) {
  fprintf(stderr, "{\"cblas_sgemm_flops\": %.0f, \"cblas_sgemm_calls\": %ld, \"cblas_dgemm_flops\": %.0f, "
                  "\"cblas_dgemm_calls\": %ld}\n", sgemm_flops, sgemm_calls, dgemm_flops, dgemm_calls);
}

__attribute__((constructor)) static void install(void) { atexit(report); }

void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                 int ldb, float beta, float* c, int ldc) {
  static sgemm_fn real;
  if (!real) real = (sgemm_fn)dlsym(RTLD_NEXT, "cblas_sgemm");
  sgemm_flops += 2.0 * m * n * k;
  ++sgemm_calls;
  real(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void cblas_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha, const double* a, int lda,
                 const double* b, int ldb, double beta, double* c, int ldc) {
  static dgemm_fn real;
  if (!real) real = (dgemm_fn)dlsym(RTLD_NEXT, "cblas_dgemm");
  dgemm_flops += 2.0 * m * n * k;
  ++dgemm_calls;
  real(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
