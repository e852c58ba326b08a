// SPDX-License-Identifier: MIT
// Backend facade, indexing family: whole slices picked or accumulated along one dim
// (index_select / index_add), one index per element (gather / scatter_add), one_hot, and the
// range of an index tensor for the ops' checks. Each writes a preallocated output. See dispatch.hpp.
#pragma once
#include <cstdint>
#include <utility>

#include "metagrad/backend/cpu/indexing.hpp"
#include "metagrad/backend/dispatch.hpp"
#include "metagrad/backend/geometry.hpp"

namespace metagrad::backend {

/// The smallest and largest index in idx (not empty).
inline std::pair<std::int64_t, std::int64_t> index_min_max(const IndexTensor& idx) {
  return dispatch("index_min_max", [&] { return cpu::index_min_max(idx.data(), idx.numel()); }, idx);
}
/// out = the slices idx picks from x along dim.
template <Element T>
void index_select(const Tensor<T>& x, int dim, const IndexTensor& idx, Tensor<T>& out) {
  dispatch("index_select", [&] {
    cpu::index_select(x.data(), dim_view(x.shape(), dim), idx.data(), idx.numel(), out.fresh_data());
  }, x, idx, out);
}
/// out's slices idx[j] along dim += src's slice j. out has already been filled.
template <Element T>
void index_add(Tensor<T>& out, int dim, const IndexTensor& idx, const Tensor<T>& src) {
  dispatch("index_add", [&] {
    cpu::index_add(out.fresh_data(), dim_view(out.shape(), dim), idx.data(), idx.numel(), src.data());
  }, out, idx, src);
}
/// out[i][j] = x[i][idx[i][j]] along dim (torch.gather); out has idx's shape.
template <Element T>
void gather(const Tensor<T>& x, int dim, const IndexTensor& idx, Tensor<T>& out) {
  dispatch("gather", [&] { cpu::gather(x.data(), x.shape(), dim, idx.data(), idx.shape(), out.fresh_data()); }, x, idx,
           out);
}
/// out[i][idx[i][j]] += src[i][j] along dim. out has already been filled.
template <Element T>
void scatter_add(Tensor<T>& out, int dim, const IndexTensor& idx, const Tensor<T>& src) {
  dispatch("scatter_add", [&] {
    cpu::scatter_add(out.fresh_data(), out.shape(), dim, idx.data(), idx.shape(), src.data());
  }, out, idx, src);
}
/// out [n, classes] = 1 at each label's column, else 0.
template <Element T>
void one_hot(const IndexTensor& labels, std::int64_t classes, Tensor<T>& out) {
  dispatch("one_hot", [&] { cpu::one_hot(labels.data(), labels.numel(), classes, out.fresh_data()); }, labels, out);
}

}  // namespace metagrad::backend
