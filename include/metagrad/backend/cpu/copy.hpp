// SPDX-License-Identifier: MIT
// Copy kernels behind the shape ops. Tensors are contiguous, so permute, slice, concat and flip
// each make a new buffer; these kernels keep that cheap. Dims that stay neighbours are merged
// first, every contiguous run is moved with one copy_n (memmove), work is split by elements so a
// single long run is shared between threads too, and a permute that moves the innermost dim
// becomes a cache-blocked 2-D transpose.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include <Eigen/Core>

#include "metagrad/backend/cpu/parallel.hpp"
#include "metagrad/backend/geometry.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::cpu {

/// Elements one thread should move before a copy is worth splitting across threads.
inline constexpr std::int64_t kCopyGrain = 1 << 15;

template <std::size_t N>
using StrideSet = std::array<std::array<std::int64_t, kMaxRank>, N>;

using backend::dim_view;
using backend::DimView;

namespace detail {

/// Calls row(offsets) for rows [begin, end) of `shape`, a row being one run along the last dim;
/// offsets[k] is the sum over the outer dims of index * strides[k][dim]. Sequential: the caller
/// decides how rows are split between threads. `shape` has rank >= 1.
template <std::size_t N, class Row>
void walk_rows(const Shape& shape, const StrideSet<N>& strides, std::int64_t begin, std::int64_t end, Row&& row) {
  const int outer = shape.rank() - 1;
  std::array<std::int64_t, kMaxRank> idx{};
  std::array<std::int64_t, N> off{};
  std::int64_t rem = begin;
  for (int d = outer - 1; d >= 0; --d) {
    idx[static_cast<std::size_t>(d)] = rem % shape[d];
    rem /= shape[d];
  }
  for (std::size_t k = 0; k < N; ++k)
    for (int d = 0; d < outer; ++d) off[k] += idx[static_cast<std::size_t>(d)] * strides[k][static_cast<std::size_t>(d)];
  for (std::int64_t r = begin; r < end; ++r) {
    row(off);
    for (int d = outer - 1; d >= 0; --d) {
      const auto ud = static_cast<std::size_t>(d);
      ++idx[ud];
      for (std::size_t k = 0; k < N; ++k) off[k] += strides[k][ud];
      if (idx[ud] < shape[d]) break;
      for (std::size_t k = 0; k < N; ++k) off[k] -= strides[k][ud] * shape[d];
      idx[ud] = 0;
    }
  }
}

/// Fills out[0, runs * len): run j is a copy of the `len` elements starting at src(j). Split by
/// elements, not runs, so one long run (a slice of dim 0) still uses every thread.
template <class T, class Src>
void copy_runs(T* out, std::int64_t runs, std::int64_t len, Src&& src) {
  if (len == 1) {
    parallel_for(runs, kCopyGrain, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t j = b; j < e; ++j) out[j] = *src(j);
    });
    return;
  }
  parallel_for(runs * len, kCopyGrain, [&](std::int64_t b, std::int64_t e) {
    std::int64_t j = b / len, r = b % len;
    while (b < e) {
      const std::int64_t n = std::min(len - r, e - b);
      std::copy_n(src(j) + r, n, out + b);
      b += n;
      ++j;
      r = 0;
    }
  });
}

template <class T>
void fill_zero(T* out, std::int64_t n) {
  parallel_for(n, kCopyGrain, [&](std::int64_t b, std::int64_t e) { std::fill(out + b, out + e, T(0)); });
}

/// A permutation after dropping extent-1 dims and merging output neighbours that are input
/// neighbours too: output dim i reads merged input dim perm[i].
struct PermutePlan {
  int rank = 0;
  std::array<std::int64_t, kMaxRank> extent{};
  std::array<int, kMaxRank> perm{};
};

inline PermutePlan plan_permute(const Shape& in, std::span<const int> perm) {
  std::array<int, kMaxRank> renumber{};
  std::array<std::int64_t, kMaxRank> kept_extent{};
  int kept = 0;
  for (int d = 0; d < in.rank(); ++d) {
    renumber[static_cast<std::size_t>(d)] = in[d] == 1 ? -1 : kept;
    if (in[d] != 1) kept_extent[static_cast<std::size_t>(kept++)] = in[d];
  }
  std::array<int, kMaxRank> first{}, last{};
  int groups = 0;
  for (int p : perm) {
    const int r = renumber[static_cast<std::size_t>(p)];
    if (r < 0) continue;
    if (groups > 0 && r == last[static_cast<std::size_t>(groups - 1)] + 1) {
      last[static_cast<std::size_t>(groups - 1)] = r;
    } else {
      first[static_cast<std::size_t>(groups)] = last[static_cast<std::size_t>(groups)] = r;
      ++groups;
    }
  }
  PermutePlan plan;
  plan.rank = groups;
  for (int g = 0; g < groups; ++g) {
    int pos = 0;  // the group's place in input order
    for (int h = 0; h < groups; ++h) pos += first[static_cast<std::size_t>(h)] < first[static_cast<std::size_t>(g)];
    std::int64_t extent = 1;
    for (int d = first[static_cast<std::size_t>(g)]; d <= last[static_cast<std::size_t>(g)]; ++d)
      extent *= kept_extent[static_cast<std::size_t>(d)];
    plan.perm[static_cast<std::size_t>(g)] = pos;
    plan.extent[static_cast<std::size_t>(pos)] = extent;
  }
  return plan;
}

/// Edge of the (input rows) x (input columns) tiles a transpose is cut into. Measured on
/// 2048^2, 4096x1000, 8192x128 and 128x8192 floats (one thread): 256 keeps all of them within
/// 1.7-2.2x of a memcpy of the same bytes; 16-32 row tiles were up to twice as slow.
inline constexpr std::int64_t kTransposeTile = 256;

// Eigen's packet types (__m512, ...) carry alignment attributes that GCC warns about dropping
// when they are template arguments; Eigen silences the same warning inside its own headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
/// out[ib * ob + ia] = in[ia * sa + ib] for ia < na, b0 <= ib < b1. Full P x P blocks (P = SIMD
/// width) are transposed in registers, so every load and store is one whole row segment and
/// power-of-two strides cost nothing extra, where a scalar tile thrashes the cache sets (8.9 ms
/// vs 1.4 ms for a 2048^2 float transpose). Edges, and index tensors, take the scalar path.
template <Element T>
void transpose_tile(const T* in, std::int64_t sa, T* out, std::int64_t ob, std::int64_t na, std::int64_t b0, std::int64_t b1) {
  std::int64_t a_done = 0;
  if constexpr (Floating<T>) {
    using Packet = typename Eigen::internal::packet_traits<T>::type;
    constexpr int P = Eigen::internal::unpacket_traits<Packet>::size;
    if constexpr (P > 1) {
      const std::int64_t b_full = b0 + (b1 - b0) / P * P;
      a_done = na / P * P;
      Eigen::internal::PacketBlock<Packet, P> block;
      // Column blocks outside: P output rows are then each written as one sequential run.
      for (std::int64_t ib = b0; ib < b_full; ib += P) {
        for (std::int64_t ia = 0; ia < a_done; ia += P) {
          for (int r = 0; r < P; ++r) block.packet[r] = Eigen::internal::ploadu<Packet>(in + (ia + r) * sa + ib);
          Eigen::internal::ptranspose(block);
          for (int r = 0; r < P; ++r) Eigen::internal::pstoreu(out + (ib + r) * ob + ia, block.packet[r]);
        }
      }
      for (std::int64_t ib = b_full; ib < b1; ++ib)
        for (std::int64_t ia = 0; ia < a_done; ++ia) out[ib * ob + ia] = in[ia * sa + ib];
    }
  }
  for (std::int64_t a0 = a_done; a0 < na; a0 += 8) {
    const std::int64_t a1 = std::min(na, a0 + 8);
    for (std::int64_t ib = b0; ib < b1; ++ib)
      for (std::int64_t ia = a0; ia < a1; ++ia) out[ib * ob + ia] = in[ia * sa + ib];
  }
}
#pragma GCC diagnostic pop

}  // namespace detail

/// out = x with its dims reordered: out dim i is x dim perm[i].
template <Element T>
void permute_copy(const T* in, T* out, const Shape& in_shape, std::span<const int> perm) {
  const std::int64_t n = in_shape.numel();
  if (n == 0) return;
  const auto plan = detail::plan_permute(in_shape, perm);
  const int m = plan.rank;
  if (m <= 1) {
    detail::copy_runs(out, 1, n, [in](std::int64_t) { return in; });
    return;
  }
  Shape merged, out_shape;
  for (int d = 0; d < m; ++d) merged.push_back(plan.extent[static_cast<std::size_t>(d)]);
  for (int i = 0; i < m; ++i) out_shape.push_back(merged[plan.perm[static_cast<std::size_t>(i)]]);
  const auto is = merged.strides(), os = out_shape.strides();
  const auto last = static_cast<std::size_t>(m - 1);

  if (plan.perm[last] == m - 1) {
    // The innermost dim stays innermost: every output row is one contiguous input run.
    StrideSet<1> st{};
    for (int i = 0; i < m; ++i) st[0][static_cast<std::size_t>(i)] = is[static_cast<std::size_t>(plan.perm[static_cast<std::size_t>(i)])];
    const std::int64_t run = out_shape[m - 1];
    parallel_for(n / run, std::max<std::int64_t>(1, kCopyGrain / run), [&](std::int64_t b, std::int64_t e) {
      T* o = out + b * run;
      detail::walk_rows<1>(out_shape, st, b, e, [&](const std::array<std::int64_t, 1>& off) {
        std::copy_n(in + off[0], run, o);
        o += run;
      });
    });
    return;
  }

  // A batch of 2-D transposes: input dim a becomes the output's innermost, and the input's
  // innermost lands at output dim b. Element (ia, ib) moves from ia*sa + ib to ib*ob + ia.
  const auto a = static_cast<std::size_t>(plan.perm[last]);
  int b = 0;
  while (plan.perm[static_cast<std::size_t>(b)] != m - 1) ++b;
  const std::int64_t na = merged[static_cast<int>(a)], sa = is[a];
  const std::int64_t nb = merged[m - 1], ob = os[static_cast<std::size_t>(b)];
  // The other dims, as rows of extent 1 so that walk_rows yields one offset pair per batch.
  Shape batch;
  StrideSet<2> st{};
  for (int i = 0; i < m - 1; ++i) {
    if (i == b) continue;
    const auto k = static_cast<std::size_t>(batch.rank());
    st[0][k] = is[static_cast<std::size_t>(plan.perm[static_cast<std::size_t>(i)])];
    st[1][k] = os[static_cast<std::size_t>(i)];
    batch.push_back(out_shape[i]);
  }
  batch.push_back(1);
  const std::int64_t batches = n / (na * nb);
  // Work units are tiles of (input rows a) x (input columns b), b fastest, so a band of input
  // rows is read once and all its columns used while it sits in L2. A narrow side lengthens the
  // other one, so that a unit still moves a full tile's worth of elements.
  auto tile_for = [](std::int64_t other) {
    constexpr std::int64_t edge = detail::kTransposeTile;
    return std::max(edge, edge * edge / std::min(other, edge) / 16 * 16);
  };
  const std::int64_t tile_a = tile_for(nb), tile_b = tile_for(na);
  const std::int64_t a_tiles = (na + tile_a - 1) / tile_a, b_tiles = (nb + tile_b - 1) / tile_b;
  const std::int64_t units = batches * a_tiles * b_tiles;
  const std::int64_t unit = std::min(na, tile_a) * std::min(nb, tile_b);
  parallel_for(units, std::max<std::int64_t>(1, kCopyGrain / unit), [&](std::int64_t u0, std::int64_t u1) {
    for (std::int64_t u = u0; u < u1; ++u) {
      const std::int64_t bi = u / (a_tiles * b_tiles), ai = u / b_tiles % a_tiles, bt = u % b_tiles;
      const std::int64_t a0 = ai * tile_a, a1 = std::min(na, a0 + tile_a);
      const std::int64_t b0 = bt * tile_b, b1 = std::min(nb, b0 + tile_b);
      std::int64_t in_base = 0, out_base = 0;
      detail::walk_rows<2>(batch, st, bi, bi + 1, [&](const std::array<std::int64_t, 2>& off) {
        in_base = off[0];
        out_base = off[1];
      });
      detail::transpose_tile(in + in_base + a0 * sa, sa, out + out_base + a0, ob, a1 - a0, b0, b1);
    }
  });
}

/// out[o, k, :] = x[o, start + k*step, :] for x viewed as `v` and k < len.
template <Element T>
void slice_copy(const T* x, T* out, DimView v, std::int64_t start, std::int64_t step, std::int64_t len) {
  if (step == 1) {
    detail::copy_runs(out, v.outer, len * v.inner, [&](std::int64_t o) { return x + (o * v.extent + start) * v.inner; });
  } else {
    detail::copy_runs(out, v.outer * len, v.inner,
                      [&](std::int64_t j) { return x + ((j / len) * v.extent + start + (j % len) * step) * v.inner; });
  }
}

/// The adjoint of slice_copy: out (shape `v`) is zero except out[o, start + k*step, :] = g[o, k, :].
template <Element T>
void slice_pad(const T* g, T* out, DimView v, std::int64_t start, std::int64_t step, std::int64_t len) {
  const std::int64_t row = v.extent * v.inner;
  if (step == 1) {
    // Each output row is zeros, the slice, zeros; split by elements so any shape uses all threads.
    const std::int64_t lo = start * v.inner, hi = (start + len) * v.inner;
    parallel_for(v.outer * row, kCopyGrain, [&](std::int64_t b, std::int64_t e) {
      std::int64_t o = b / row, r = b % row;
      while (b < e) {
        const std::int64_t stop = r < lo ? lo : r < hi ? hi : row;
        const std::int64_t n = std::min(stop - r, e - b);
        if (r >= lo && r < hi) std::copy_n(g + o * len * v.inner + (r - lo), n, out + b);
        else std::fill_n(out + b, n, T(0));
        b += n;
        r += n;
        if (r == row) {
          r = 0;
          ++o;
        }
      }
    });
    return;
  }
  detail::fill_zero(out, v.outer * row);
  parallel_for(v.outer * len, std::max<std::int64_t>(1, kCopyGrain / std::max<std::int64_t>(v.inner, 1)),
               [&](std::int64_t b, std::int64_t e) {
                 for (std::int64_t j = b; j < e; ++j)
                   std::copy_n(g + j * v.inner, v.inner, out + ((j / len) * v.extent + start + (j % len) * step) * v.inner);
               });
}

/// out = the pieces laid side by side along a dim: out viewed as [outer, offsets.back(), inner],
/// piece i (viewed as [outer, offsets[i+1] - offsets[i], inner]) lands at offsets[i].
template <Element T>
void concat_copy(std::span<const T* const> pieces, std::span<const std::int64_t> offsets, T* out, std::int64_t outer,
                 std::int64_t inner) {
  const std::int64_t row = offsets.back() * inner;
  parallel_for(outer * row, kCopyGrain, [&](std::int64_t b, std::int64_t e) {
    std::int64_t o = b / row, r = b % row;
    std::size_t i = 0;
    while (offsets[i + 1] * inner <= r) ++i;
    while (b < e) {
      const std::int64_t lo = offsets[i] * inner, hi = offsets[i + 1] * inner;
      const std::int64_t n = std::min(hi - r, e - b);
      std::copy_n(pieces[i] + o * (hi - lo) + (r - lo), n, out + b);
      b += n;
      r += n;
      if (r == row) {
        r = 0;
        i = 0;
        ++o;
      }
      while (i + 1 < offsets.size() - 1 && offsets[i + 1] * inner <= r) ++i;  // skips empty pieces too
    }
  });
}

/// out = x reversed along every dim d with flip[d].
template <Element T>
void flip_copy(const T* x, T* out, const Shape& shape, const std::array<bool, kMaxRank>& flip) {
  const std::int64_t n = shape.numel();
  if (n == 0) return;
  const int rank = shape.rank();
  if (rank == 0) {
    out[0] = x[0];
    return;
  }
  const auto natural = shape.strides();
  StrideSet<1> st{};
  std::int64_t base = 0;
  for (int d = 0; d < rank; ++d) {
    const auto ud = static_cast<std::size_t>(d);
    st[0][ud] = flip[ud] ? -natural[ud] : natural[ud];
    if (flip[ud]) base += (shape[d] - 1) * natural[ud];
  }
  const std::int64_t run = shape[rank - 1];
  const bool reverse_rows = flip[static_cast<std::size_t>(rank - 1)];
  parallel_for(n / run, std::max<std::int64_t>(1, kCopyGrain / run), [&](std::int64_t b, std::int64_t e) {
    T* o = out + b * run;
    detail::walk_rows<1>(shape, st, b, e, [&](const std::array<std::int64_t, 1>& off) {
      const T* src = x + base + off[0];  // the row's first element (its last one when the row is flipped)
      if (reverse_rows) std::reverse_copy(src - (run - 1), src + 1, o);
      else std::copy_n(src, run, o);
      o += run;
    });
  });
}

}  // namespace metagrad::cpu
