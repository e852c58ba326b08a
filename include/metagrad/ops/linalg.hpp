// SPDX-License-Identifier: MIT
// Matrix products: the primitives mm (2-D) and bmm (batched, broadcast batch dims), each taking
// transpose flags that are applied inside the GEMM. Their backward rules are again mm/bmm with
// flags, so no transpose is materialised at any derivative order. matmul (PyTorch semantics),
// dot, outer and linear are built on them; a batched product whose right operand has no batch
// extent folds into one large mm.
#pragma once
#include <string>

#include "metagrad/backend/linalg.hpp"
#include "metagrad/ops/arithmetic.hpp"

namespace metagrad {

template <Floating T>
Tensor<T> bmm(const Tensor<T>& a, const Tensor<T>& b, bool transpose_a = false, bool transpose_b = false);

namespace detail {
/// "[2, 3]" or "[2, 3] (transposed)", for error messages.
inline std::string operand_str(const Shape& s, bool transposed) { return s.str() + (transposed ? " (transposed)" : ""); }

/// Rows and columns of op(x) for the last two dims of x.
struct MatrixDims {
  std::int64_t rows, cols;
};
inline MatrixDims op_dims(const Shape& s, bool transposed) {
  const std::int64_t r = s[s.rank() - 2], c = s[s.rank() - 1];
  return transposed ? MatrixDims{c, r} : MatrixDims{r, c};
}

/// Product of all dims but the last (the rows of x seen as a matrix).
inline std::int64_t leading_numel(const Shape& s) {
  std::int64_t n = 1;
  for (int i = 0; i + 1 < s.rank(); ++i) n *= s[i];
  return n;
}

/// Batch dims of a product of `a` and `b` (all but their last two dims), broadcast.
inline Shape product_batch(const Shape& a, const Shape& b, const char* op) {
  const Shape ba = backend::matrix_batch(a), bb = backend::matrix_batch(b);
  const int r = std::max(ba.rank(), bb.rank());
  Shape out;
  for (int i = 0; i < r; ++i) {
    const int ia = i - (r - ba.rank()), ib = i - (r - bb.rank());
    const std::int64_t da = ia >= 0 ? ba[ia] : 1, db = ib >= 0 ? bb[ib] : 1;
    check(da == db || da == 1 || db == 1, op, "batch dims of ", a, " and ", b, " cannot be broadcast together (",
          da, " vs ", db, ")");
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

/// The batched product itself: one GEMM per entry of the broadcast batch (no folding).
template <Floating T>
Tensor<T> bmm_batched(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb, Shape out_shape) {
  auto out = Tensor<T>::empty(out_shape);
  backend::batched_gemm(a, b, ta, tb, out);
  return record("bmm", std::move(out), {a, b}, [ta, tb](const Tensor<T>& g, BackwardContext<T>& c) {
    const auto &a = c.input(0), &b = c.input(1);
    // Same rules as mm; sum_to folds the batch entries an operand was broadcast over.
    if (c.wants(0)) c.set(0, sum_to(ta ? bmm(b, g, tb, true) : bmm(g, b, false, !tb), a.shape()));
    if (c.wants(1)) c.set(1, sum_to(tb ? bmm(g, a, true, ta) : bmm(a, g, !ta, false), b.shape()));
  }, [ta, tb](const TangentContext<T>& c) {
    // Bilinear: d(op(a) op(b)) = op(da) op(b) + op(a) op(db).
    const Tensor<T> da = c.has_tangent(0) ? bmm(c.tangent(0), c.input(1), ta, tb) : Tensor<T>();
    const Tensor<T> db = c.has_tangent(1) ? bmm(c.input(0), c.tangent(1), ta, tb) : Tensor<T>();
    return add_terms(da, db, c.output_shape());
  });
}
}  // namespace detail

/// op(a) · op(b) for 2-D a and b, where op transposes when its flag is set (inside the GEMM).
template <Floating T>
Tensor<T> mm(const Tensor<T>& a, const Tensor<T>& b, bool transpose_a = false, bool transpose_b = false) {
  check(a.dim() == 2 && b.dim() == 2, "mm", "needs 2-D operands, got ", a.shape(), " and ", b.shape());
  const bool ta = transpose_a, tb = transpose_b;
  const auto da = detail::op_dims(a.shape(), ta), db = detail::op_dims(b.shape(), tb);
  check(da.cols == db.rows, "mm", "inner dims differ: ", detail::operand_str(a.shape(), ta), " @ ",
        detail::operand_str(b.shape(), tb), " (", da.cols, " vs ", db.rows, ")");
  auto out = Tensor<T>::empty(Shape{da.rows, db.cols});
  backend::gemm(a, ta, b, tb, out);
  return record("mm", std::move(out), {a, b}, [ta, tb](const Tensor<T>& g, BackwardContext<T>& c) {
    const auto &a = c.input(0), &b = c.input(1);
    // d op(a) = g op(b)ᵀ and d op(b) = op(a)ᵀ g, with the transposes moved into the flags.
    if (c.wants(0)) c.set(0, ta ? mm(b, g, tb, true) : mm(g, b, false, !tb));
    if (c.wants(1)) c.set(1, tb ? mm(g, a, true, ta) : mm(a, g, !ta, false));
  }, [ta, tb](const TangentContext<T>& c) {
    // Bilinear: d(op(a) op(b)) = op(da) op(b) + op(a) op(db).
    const Tensor<T> da = c.has_tangent(0) ? mm(c.tangent(0), c.input(1), ta, tb) : Tensor<T>();
    const Tensor<T> db = c.has_tangent(1) ? mm(c.input(0), c.tangent(1), ta, tb) : Tensor<T>();
    return detail::add_terms(da, db, c.output_shape());
  });
}

/// Batched op(a) · op(b) over the leading (batch) dims of a and b, which broadcast; both have
/// rank >= 2. When b has no batch extent and a is not transposed, the whole batch is one GEMM.
template <Floating T>
Tensor<T> bmm(const Tensor<T>& a, const Tensor<T>& b, bool transpose_a, bool transpose_b) {
  check(a.dim() >= 2 && b.dim() >= 2, "bmm", "needs operands of rank >= 2, got ", a.shape(), " and ", b.shape());
  if (a.dim() == 2 && b.dim() == 2) return mm(a, b, transpose_a, transpose_b);
  const auto da = detail::op_dims(a.shape(), transpose_a), db = detail::op_dims(b.shape(), transpose_b);
  check(da.cols == db.rows, "bmm", "inner dims differ: ", detail::operand_str(a.shape(), transpose_a), " @ ",
        detail::operand_str(b.shape(), transpose_b), " (", da.cols, " vs ", db.rows, ")");
  Shape out = detail::product_batch(a.shape(), b.shape(), "bmm");
  out.push_back(da.rows);
  out.push_back(db.cols);
  if (!transpose_a && backend::matrix_batch(b.shape()).numel() == 1) {
    // [batch..., n, k] @ [k, m] is [batch * n, k] @ [k, m]: one GEMM, and one for each gradient.
    const auto flat_a = reshape(a, Shape{detail::leading_numel(a.shape()), da.cols});
    const auto flat_b = reshape(b, Shape{b.size(-2), b.size(-1)});
    return reshape(mm(flat_a, flat_b, false, transpose_b), out);
  }
  return detail::bmm_batched(a, b, transpose_a, transpose_b, out);
}

/// PyTorch's matmul: dot for two vectors, a matrix-vector or vector-matrix product (the vector
/// gets a unit dim that is removed again), mm for matrices, and bmm with broadcast batch dims.
template <Floating T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  check(a.dim() >= 1 && b.dim() >= 1, "matmul", "needs operands of rank >= 1, got ", a.shape(), " and ", b.shape());
  const std::int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  check(ka == kb, "matmul", "inner dims differ: ", a.shape(), " @ ", b.shape(), " (", ka, " vs ", kb, ")");
  if (a.dim() >= 2 && b.dim() >= 2) {
    (void)detail::product_batch(a.shape(), b.shape(), "matmul");  // the error names matmul, not bmm
    return bmm(a, b);
  }
  const auto a2 = a.dim() == 1 ? reshape(a, Shape{1, ka}) : a;
  const auto b2 = b.dim() == 1 ? reshape(b, Shape{kb, 1}) : b;
  const auto product = bmm(a2, b2);
  // Drop the unit dims the vectors were given.
  Shape out;
  for (int i = 0; i < product.dim(); ++i) {
    const bool vector_row = a.dim() == 1 && i == product.dim() - 2;
    const bool vector_col = b.dim() == 1 && i == product.dim() - 1;
    if (!vector_row && !vector_col) out.push_back(product.shape()[i]);
  }
  return reshape(product, out);
}

/// Inner product of two vectors of equal length (a rank-0 result).
template <Floating T>
Tensor<T> dot(const Tensor<T>& a, const Tensor<T>& b) {
  check(a.dim() == 1 && b.dim() == 1 && a.numel() == b.numel(), "dot", "needs two vectors of equal length, got ",
        a.shape(), " and ", b.shape());
  return matmul(a, b);
}

/// a bᵀ for vectors a [n] and b [m]: an [n, m] matrix.
template <Floating T>
Tensor<T> outer(const Tensor<T>& a, const Tensor<T>& b) {
  check(a.dim() == 1 && b.dim() == 1, "outer", "needs two vectors, got ", a.shape(), " and ", b.shape());
  return mul(reshape(a, Shape{a.numel(), 1}), reshape(b, Shape{1, b.numel()}));
}

/// x · Wᵀ + bias with PyTorch's layout: x [..., in], weight [out, in], optional bias [out].
template <Floating T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = {}) {
  check(weight.dim() == 2, "linear", "weight must be 2-D [out, in], got ", weight.shape());
  check(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear", "input ", x.shape(), " does not match weight ",
        weight.shape(), " (in features ", x.dim() ? x.size(-1) : 0, " vs ", weight.size(1), ")");
  check(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), "linear", "bias ",
        bias.defined() ? bias.shape().str() : "", " does not match weight ", weight.shape());
  Tensor<T> y;
  if (x.dim() == 2) {
    y = mm(x, weight, false, true);
  } else {
    Shape out = x.shape();
    out[out.rank() - 1] = weight.size(0);
    y = reshape(mm(reshape(x, Shape{detail::leading_numel(x.shape()), x.size(-1)}), weight, false, true), out);
  }
  return bias.defined() ? add(y, bias) : y;
}

}  // namespace metagrad
