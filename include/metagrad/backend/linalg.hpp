// SPDX-License-Identifier: MIT
// Backend facade, matrix-product family: one GEMM of two matrices, or a batched GEMM over
// broadcast batch dims, each operand optionally transposed. See dispatch.hpp.
#pragma once
#include "metagrad/backend/cpu/gemm.hpp"
#include "metagrad/backend/dispatch.hpp"
#include "metagrad/backend/geometry.hpp"

namespace metagrad::backend {

/// out = op(a) op(b) for matrices a and b (op transposes where ta / tb); out is [n, m].
template <Floating T>
void gemm(const Tensor<T>& a, bool ta, const Tensor<T>& b, bool tb, Tensor<T>& out) {
  dispatch("mm", [&] {
    cpu::gemm(cpu::dense(a.data(), a.size(0), a.size(1), ta), cpu::dense(b.data(), b.size(0), b.size(1), tb),
              out.fresh_data(), out.size(1));
  }, a, b, out);
}
/// out[i] = op(a[i]) op(b[i]) over out's batch dims, a's and b's batch dims broadcast to them.
template <Floating T>
void batched_gemm(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb, Tensor<T>& out) {
  dispatch("bmm", [&] { cpu::batched_gemm(a, b, ta, tb, out); }, a, b, out);
}

}  // namespace metagrad::backend
