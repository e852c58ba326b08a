// SPDX-License-Identifier: MIT
// GEMM on row-major buffers through OpenBLAS (with METAGRAD_WITH_OPENBLAS: its AVX-512 kernels
// run large products ~1.4x faster than Eigen's, see docs/performance.md) or else Eigen. A
// transposed operand is read in place as the other storage order (a transpose flag for BLAS), so
// no transpose is ever copied. Eigen's blocked kernel is called with packing buffers that each
// thread keeps and only grows: Eigen's own product allocates them on every call, and glibc then
// maps and unmaps (or trims) the memory each time, which made products with a few hundred
// columns of depth 7x slower. Large Eigen products are split into column or row panels, one per
// thread; batched products run one GEMM per batch entry, split across threads when each GEMM is
// small.
#pragma once
#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>

#include <Eigen/Core>
#if METAGRAD_WITH_OPENBLAS
#include <cblas.h>
#endif

#include "metagrad/backend/cpu/elementwise.hpp"
#include "metagrad/backend/cpu/parallel.hpp"
#include "metagrad/backend/geometry.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::cpu {

template <class T>
using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using StridedMap = Eigen::Map<RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using ConstStridedMap = Eigen::Map<const RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

/// One operand of a GEMM: a row-major matrix of `rows` x `cols` with leading dimension `ld`,
/// used as itself or transposed.
template <class T>
struct GemmOperand {
  const T* data;
  std::int64_t rows, cols, ld;
  bool transposed = false;
};

namespace detail {
/// A grow-only, 64-byte aligned buffer.
template <class T>
class GrowBuffer {
 public:
  GrowBuffer() = default;
  GrowBuffer(const GrowBuffer&) = delete;
  GrowBuffer& operator=(const GrowBuffer&) = delete;
  ~GrowBuffer() { std::free(data_); }
  T* get(std::size_t n) {
    if (n > size_) {
      std::free(data_);
      data_ = static_cast<T*>(std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64));
      if (!data_) throw std::bad_alloc();
      size_ = n;
    }
    return data_;
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Eigen's cache blocking for one sequential product, with this thread's packing buffers.
template <class T>
class ThreadBlocking : public Eigen::internal::level3_blocking<T, T> {
 public:
  /// rows x cols is the (column-major) destination Eigen computes, depth the inner dimension.
  ThreadBlocking(Eigen::Index rows, Eigen::Index cols, Eigen::Index depth) {
    this->m_mc = rows;
    this->m_nc = cols;
    this->m_kc = depth;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(this->m_kc, this->m_mc, this->m_nc, Eigen::Index(1));
    thread_local GrowBuffer<T> packed_lhs, packed_rhs;
    this->m_blockA = packed_lhs.get(static_cast<std::size_t>(this->m_mc * this->m_kc));
    this->m_blockB = packed_rhs.get(static_cast<std::size_t>(this->m_kc * this->m_nc));
  }
};

/// C += op(A) op(B) on this thread with Eigen's blocked kernel; C is row-major [n, m].
template <class T>
void blocked_gemm(const GemmOperand<T>& a, const GemmOperand<T>& b, std::int64_t n, std::int64_t m, std::int64_t k,
                  T* c, std::int64_t ldc) {
  constexpr int Row = Eigen::RowMajor, Col = Eigen::ColMajor;
  // A row-major destination is computed by Eigen as the column-major m x n transpose.
  ThreadBlocking<T> blocking(m, n, k);
  const auto run = [&]<int LhsOrder, int RhsOrder>() {
#if EIGEN_VERSION_AT_LEAST(3, 3, 90)
    Eigen::internal::general_matrix_matrix_product<Eigen::Index, T, LhsOrder, false, T, RhsOrder, false, Row, 1>::run(
        n, m, k, a.data, a.ld, b.data, b.ld, c, 1, ldc, T(1), blocking, nullptr);
#else
    Eigen::internal::general_matrix_matrix_product<Eigen::Index, T, LhsOrder, false, T, RhsOrder, false, Row>::run(
        n, m, k, a.data, a.ld, b.data, b.ld, c, ldc, T(1), blocking, nullptr);
#endif
  };
  // A transposed row-major operand is the same memory read column-major.
  if (a.transposed) {
    if (b.transposed) run.template operator()<Col, Col>();
    else run.template operator()<Col, Row>();
  } else {
    if (b.transposed) run.template operator()<Row, Col>();
    else run.template operator()<Row, Row>();
  }
}

/// Below this many multiply-adds a product stays on one thread.
inline constexpr std::int64_t kParallelGemmWork = std::int64_t{1} << 21;

#if METAGRAD_WITH_OPENBLAS
/// C = op(A) op(B) (+ C with `accumulate`) through OpenBLAS; false where it cannot take the product
/// (an element type it lacks, a size beyond its 32-bit integers, or a leading dimension shorter
/// than a row, which BLAS rejects and Eigen's maps accept). Inside one of our parallel regions
/// OpenMP OpenBLAS runs on the calling thread; outside it uses OpenMP's thread count.
template <class T>
bool blas_gemm(const GemmOperand<T>& a, const GemmOperand<T>& b, std::int64_t n, std::int64_t m, std::int64_t k,
               T* c, std::int64_t ldc, bool accumulate) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    for (const std::int64_t v : {n, m, k, a.ld, b.ld, ldc})
      if (v > INT_MAX) return false;
    if (a.ld < a.cols || b.ld < b.cols || ldc < m) return false;
    const auto ta = a.transposed ? CblasTrans : CblasNoTrans, tb = b.transposed ? CblasTrans : CblasNoTrans;
    const auto i = [](std::int64_t v) { return static_cast<blasint>(v); };
    const T beta = accumulate ? T(1) : T(0);
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemm(CblasRowMajor, ta, tb, i(n), i(m), i(k), 1.0f, a.data, i(a.ld), b.data, i(b.ld), beta, c, i(ldc));
    else
      cblas_dgemm(CblasRowMajor, ta, tb, i(n), i(m), i(k), 1.0, a.data, i(a.ld), b.data, i(b.ld), beta, c, i(ldc));
    return true;
  } else {
    return false;
  }
}
#endif
}  // namespace detail

namespace detail {
/// Products whose C is at most this many columns wide take direct_gemm.
inline constexpr std::int64_t kNarrowGemm = 32;

/// SIMD width of T in Eigen's packets (16 floats with AVX-512).
template <class T>
inline constexpr std::int64_t kPacketWidth = Eigen::internal::unpacket_traits<typename Eigen::internal::packet_traits<T>::type>::size;

/// Whether direct_gemm takes this product: C narrow (attention's per-head weights·v and the two
/// gradients of it, [256, 16] at depth 256), where OpenBLAS spends as long packing the deep
/// operand as multiplying (measured: 1.3-1.6x faster direct, docs/performance.md), with enough
/// rows to fill a register tile and whole SIMD packets across C's rows. Narrow-depth products
/// (q·kᵀ at depth 16) stay with BLAS: there the direct kernel measured 0.8x of it.
template <class T>
bool direct_gemm_suits(std::int64_t n, std::int64_t m, std::int64_t k) {
  return n >= 8 && k >= 16 && m <= kNarrowGemm && m % kPacketWidth<T> == 0;
}

/// C[n, m] = A(i, p)·B(p, j) summed over p < k, with A read at a[i·a_row + p·a_depth] (either
/// layout) and B row-major with leading dimension ldb. A register tile of Rows rows × Packets
/// SIMD packets accumulates over the whole depth, taking one broadcast of A and one load of B per
/// multiply-add packet, and is stored once: no operand is packed or copied.
template <class T, int Rows, int Packets>
void direct_tile(const T* a, std::int64_t a_row, std::int64_t a_depth, const T* b, std::int64_t ldb, std::int64_t k,
                 T* c, std::int64_t ldc, bool accumulate) {
  using Packet = typename Eigen::internal::packet_traits<T>::type;
  constexpr int width = static_cast<int>(kPacketWidth<T>);
  Packet acc[Rows][Packets];
  for (int r = 0; r < Rows; ++r)
    for (int q = 0; q < Packets; ++q) acc[r][q] = Eigen::internal::pset1<Packet>(T(0));
  for (std::int64_t p = 0; p < k; ++p) {
    Packet row[Packets];
    for (int q = 0; q < Packets; ++q) row[q] = Eigen::internal::ploadu<Packet>(b + p * ldb + q * width);
    for (int r = 0; r < Rows; ++r) {
      const Packet x = Eigen::internal::pset1<Packet>(a[r * a_row + p * a_depth]);
      for (int q = 0; q < Packets; ++q) acc[r][q] = Eigen::internal::pmadd(x, row[q], acc[r][q]);
    }
  }
  for (int r = 0; r < Rows; ++r)
    for (int q = 0; q < Packets; ++q) {
      T* out = c + r * ldc + q * width;
      Eigen::internal::pstoreu(out, accumulate ? Eigen::internal::padd(Eigen::internal::ploadu<Packet>(out), acc[r][q])
                                               : acc[r][q]);
    }
}

/// Rows rows of C across all its m columns (a multiple of the packet width): tiles of Packets
/// packets, then single packets.
template <class T, int Rows, int Packets>
void direct_rows(const T* a, std::int64_t a_row, std::int64_t a_depth, const T* b, std::int64_t ldb, std::int64_t k,
                 std::int64_t m, T* c, std::int64_t ldc, bool accumulate) {
  constexpr std::int64_t width = kPacketWidth<T>;
  std::int64_t j = 0;
  for (; j + Packets * width <= m; j += Packets * width)
    direct_tile<T, Rows, Packets>(a, a_row, a_depth, b + j, ldb, k, c + j, ldc, accumulate);
  for (; j < m; j += width) direct_tile<T, Rows, 1>(a, a_row, a_depth, b + j, ldb, k, c + j, ldc, accumulate);
}

/// C (+)= op(A) op(B) for direct_gemm_suits products: B is first laid out row-major [k, m] if it
/// is transposed (k × at most 32: cheap next to the product), then C is computed in blocks of 8
/// rows, split across threads when large.
template <class T>
void direct_gemm(const GemmOperand<T>& a, const GemmOperand<T>& b, std::int64_t n, std::int64_t m, std::int64_t k,
                 T* c, std::int64_t ldc, bool accumulate) {
  const T* pb = b.data;
  std::int64_t ldb = b.ld;
  thread_local GrowBuffer<T> laid_out;
  if (b.transposed) {
    T* dst = laid_out.get(static_cast<std::size_t>(k * m));
    for (std::int64_t j = 0; j < m; ++j)
      for (std::int64_t p = 0; p < k; ++p) dst[p * m + j] = b.data[j * b.ld + p];
    pb = dst;
    ldb = m;
  }
  const std::int64_t a_row = a.transposed ? 1 : a.ld, a_depth = a.transposed ? a.ld : 1;
  // 8 rows × 1 packet, or × 2 for 32 floats: up to 16 accumulator registers. Rows left over go
  // one at a time.
  const auto run = [&]<int Rows, int Packets>(std::int64_t i0, std::int64_t i1) {
    std::int64_t i = i0;
    for (; i + Rows <= i1; i += Rows)
      direct_rows<T, Rows, Packets>(a.data + i * a_row, a_row, a_depth, pb, ldb, k, m, c + i * ldc, ldc, accumulate);
    for (; i < i1; ++i)
      direct_rows<T, 1, Packets>(a.data + i * a_row, a_row, a_depth, pb, ldb, k, m, c + i * ldc, ldc, accumulate);
  };
  constexpr std::int64_t rows_per_block = 8;
  const std::int64_t blocks = (n + rows_per_block - 1) / rows_per_block;
  const std::int64_t grain = std::max<std::int64_t>(1, kParallelGemmWork / std::max<std::int64_t>(1, rows_per_block * m * k));
  parallel_for(blocks, grain, [&](std::int64_t b0, std::int64_t b1) {
    run.template operator()<8, 2>(b0 * rows_per_block, std::min(n, b1 * rows_per_block));
  });
}
}  // namespace detail

/// C[n, m] = op(A) op(B), or C += op(A) op(B) with `accumulate`; C has leading dimension ldc.
template <class T>
void gemm(const GemmOperand<T>& a, const GemmOperand<T>& b, T* c, std::int64_t ldc, bool accumulate = false) {
  const std::int64_t n = a.transposed ? a.cols : a.rows, k = a.transposed ? a.rows : a.cols;
  const std::int64_t m = b.transposed ? b.rows : b.cols;
  if (n == 0 || m == 0) return;
  const bool small = n == 1 || m == 1 || n + m + k < 20;
  if constexpr (std::is_floating_point_v<T>)
    if (k > 0 && detail::direct_gemm_suits<T>(n, m, k)) {
      detail::direct_gemm(a, b, n, m, k, c, ldc, accumulate);
      return;
    }
#if METAGRAD_WITH_OPENBLAS
  if (!small && k > 0 && detail::blas_gemm(a, b, n, m, k, c, ldc, accumulate)) return;
#endif
  StridedMap<T> out(c, n, m, Eigen::OuterStride<>(ldc));
  if (!accumulate) out.setZero();
  if (k == 0) return;
  if (small) {
    // Matrix-vector and tiny products: Eigen's GEMV and coefficient-wise kernels allocate nothing.
    const ConstStridedMap<T> ma(a.data, a.rows, a.cols, Eigen::OuterStride<>(a.ld));
    const ConstStridedMap<T> mb(b.data, b.rows, b.cols, Eigen::OuterStride<>(b.ld));
    const auto run = [&](const auto& lhs, const auto& rhs) { out.noalias() += lhs * rhs; };
    if (a.transposed) {
      if (b.transposed) run(ma.transpose(), mb.transpose());
      else run(ma.transpose(), mb);
    } else {
      if (b.transposed) run(ma, mb.transpose());
      else run(ma, mb);
    }
    return;
  }
  const std::int64_t threads = std::min<std::int64_t>(num_threads(), n * m * k / detail::kParallelGemmWork);
  if (threads <= 1) {
    detail::blocked_gemm(a, b, n, m, k, c, ldc);
    return;
  }
  // One panel of C per thread, across its longer side, in multiples of 16 (Eigen's register tile).
  const bool split_columns = m >= n;
  const std::int64_t extent = split_columns ? m : n;
  const std::int64_t tiles = (extent + 15) / 16;
  parallel_for(threads, 1, [&](std::int64_t t0, std::int64_t t1) {
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t begin = std::min(extent, tiles * t / threads * 16);
      const std::int64_t end = std::min(extent, tiles * (t + 1) / threads * 16);
      if (begin >= end) continue;
      GemmOperand<T> pa = a, pb = b;
      T* pc = c;
      if (split_columns) {
        // Columns [begin, end) of op(B): row offset of a transposed B, column offset otherwise.
        pb.data += b.transposed ? begin * b.ld : begin;
        (b.transposed ? pb.rows : pb.cols) = end - begin;
        pc += begin;
        detail::blocked_gemm(pa, pb, n, end - begin, k, pc, ldc);
      } else {
        pa.data += a.transposed ? begin : begin * a.ld;
        (a.transposed ? pa.cols : pa.rows) = end - begin;
        pc += begin * ldc;
        detail::blocked_gemm(pa, pb, end - begin, m, k, pc, ldc);
      }
    }
  });
}

/// A contiguous row-major matrix as a GEMM operand.
template <class T>
GemmOperand<T> dense(const T* data, std::int64_t rows, std::int64_t cols, bool transposed = false) {
  return {data, rows, cols, cols, transposed};
}

namespace detail {
/// Below this many multiply-adds per product, threads take whole products of a batch instead of
/// sharing each one.
inline constexpr std::int64_t kSmallGemmWork = std::int64_t{1} << 18;

using backend::matrix_batch;
}  // namespace detail

/// out[i] = op(a[i]) op(b[i]) over out's batch dims (all but the last two), where a's and b's
/// batch dims broadcast to out's. `out` is preallocated with shape [batch..., n, m].
template <Element T>
void batched_gemm(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb, Tensor<T>& out) {
  const Shape batch = detail::matrix_batch(out.shape());
  const std::int64_t count = batch.numel();
  const std::int64_t ar = a.size(-2), ac = a.size(-1), br = b.size(-2), bc = b.size(-1);
  const std::int64_t n = out.size(-2), m = out.size(-1), k = ta ? ar : ac;
  const auto sa = detail::broadcast_strides(detail::matrix_batch(a.shape()), batch);
  const auto sb = detail::broadcast_strides(detail::matrix_batch(b.shape()), batch);
  const T *pa = a.data(), *pb = b.data();
  T* po = out.fresh_data();
  const std::int64_t work = std::max<std::int64_t>(1, n * m * k);
  const std::int64_t grain = std::max<std::int64_t>(1, detail::kSmallGemmWork / work);
  parallel_for(count, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      // Batch-dim offsets (in matrices) of a and b for output matrix i.
      std::int64_t rem = i, oa = 0, ob = 0;
      for (int d = batch.rank() - 1; d >= 0; --d) {
        const std::int64_t idx = rem % batch[d];
        rem /= batch[d];
        oa += idx * sa[static_cast<std::size_t>(d)];
        ob += idx * sb[static_cast<std::size_t>(d)];
      }
      gemm(dense(pa + oa * ar * ac, ar, ac, ta), dense(pb + ob * br * bc, br, bc, tb), po + i * n * m, m);
    }
  });
}

}  // namespace metagrad::cpu
