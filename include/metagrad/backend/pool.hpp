// SPDX-License-Identifier: MIT
// Backend facade, pooling family: window maxima (with their argmax) and means over the planes of
// [..., H, W] tensors for given PoolAxis windows, the means' adjoint, and the gather / scatter
// of plane positions that max pooling's gradients use. Each writes a preallocated output.
#pragma once
#include <cstdint>

#include "metagrad/backend/cpu/pool.hpp"
#include "metagrad/backend/dispatch.hpp"
#include "metagrad/backend/geometry.hpp"

namespace metagrad::backend {

/// y = the maximum of each window, idx = its position in the input plane.
template <Floating T>
void window_max(const Tensor<T>& x, const PoolAxis& h, const PoolAxis& w, std::int64_t planes, Tensor<T>& y,
                IndexTensor& idx) {
  dispatch("max_pool2d", [&] { cpu::window_max(x.data(), h, w, planes, y.fresh_data(), idx.fresh_data()); }, x, y, idx);
}
/// y = the mean of each window (its divisor from the axes).
template <Floating T>
void window_mean(const Tensor<T>& x, const PoolAxis& h, const PoolAxis& w, std::int64_t planes, Tensor<T>& y) {
  dispatch("avg_pool2d", [&] { cpu::window_mean(x.data(), h, w, planes, y.fresh_data()); }, x, y);
}
/// dx = the adjoint of window_mean applied to g.
template <Floating T>
void window_mean_adjoint(const Tensor<T>& g, const PoolAxis& h, const PoolAxis& w, std::int64_t planes, Tensor<T>& dx) {
  dispatch("avg_pool2d_adjoint", [&] { cpu::window_mean_adjoint(g.data(), h, w, planes, dx.fresh_data()); }, g, dx);
}
/// dx = zeros with g's values added at the plane positions idx (planes of in_plane values).
template <Floating T>
void plane_scatter_add(const Tensor<T>& g, const IndexTensor& idx, std::int64_t planes, std::int64_t out_plane,
                       std::int64_t in_plane, Tensor<T>& dx) {
  dispatch("pool_scatter", [&] {
    cpu::plane_scatter_add(g.data(), idx.data(), planes, out_plane, in_plane, dx.fresh_data());
  }, g, idx, dx);
}
/// y = x's values at the plane positions idx.
template <Floating T>
void plane_gather(const Tensor<T>& x, const IndexTensor& idx, std::int64_t planes, std::int64_t out_plane,
                  std::int64_t in_plane, Tensor<T>& y) {
  dispatch("pool_gather", [&] { cpu::plane_gather(x.data(), idx.data(), planes, out_plane, in_plane, y.fresh_data()); }, x,
           idx, y);
}

}  // namespace metagrad::backend
