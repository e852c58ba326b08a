// SPDX-License-Identifier: MIT
// The one place where a kernel is chosen by device. Every backend:: facade function hands its
// tensors and its CPU kernel to dispatch(): the first tensor's device picks the kernel, and the
// others must be on that device. CPU is the only backend; a CUDA build (METAGRAD_WITH_CUDA) would add its
// branch in on_device() and a cuda:: kernel next to each cpu:: one. Inline templates throughout:
// the dispatch compiles to one compare and a direct call, no virtual call or std::function.
#pragma once
#include <initializer_list>
#include <sstream>
#include <utility>

#include "metagrad/core/device.hpp"
#include "metagrad/core/error.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::backend {

inline const char* device_type_name(DeviceType t) { return t == DeviceType::cpu ? "cpu" : "cuda"; }

// The error paths are out of line and cold, so that the hot path of every facade function stays
// a compare and a call that inlines into the op.

/// The error for a tensor on a device that has no kernel for `op`.
[[noreturn, gnu::cold, gnu::noinline]] inline void no_kernel(const char* op, Device d) {
  fail(op, "no ", device_type_name(d.type), " kernel (a tensor is on ", d,
       "; this build has CPU kernels only)");
}

/// Runs the kernel for device d: `cpu()` on the CPU; no other device has kernels yet.
template <class Cpu>
decltype(auto) on_device(const char* op, Device d, Cpu&& cpu) {
  if (d.is_cpu()) [[likely]]
    return std::forward<Cpu>(cpu)();
  // METAGRAD_WITH_CUDA: `if (d.is_cuda()) return cuda();` goes here, with a cuda:: launcher.
  no_kernel(op, d);
}

/// The error for tensors of one op on different devices, naming each tensor's device in order.
[[noreturn, gnu::cold, gnu::noinline]] inline void different_devices(const char* op, std::initializer_list<Device> ds) {
  std::ostringstream devices;
  for (const Device& d : ds) devices << (&d == ds.begin() ? "" : ", ") << d;
  fail(op, "tensors on different devices (", devices.str(), "); all must be on one device");
}

/// The device all of `tensors` are on; an error naming op and every device if they differ.
template <class T0, class... Ts>
Device common_device(const char* op, const Tensor<T0>& first, const Tensor<Ts>&... rest) {
  const Device d = first.device();
  if (((rest.device() != d) || ...)) [[unlikely]]
    different_devices(op, {d, rest.device()...});
  return d;
}

/// Runs the kernel of `op` for the device of `first` (the first input, by convention): `cpu()`
/// on the CPU, after checking that all the other tensors are there too. On a device without
/// kernels the missing kernel is the error, whatever the other tensors' devices.
template <class Cpu, class T0, class... Ts>
decltype(auto) dispatch(const char* op, Cpu&& cpu, const Tensor<T0>& first, const Tensor<Ts>&... rest) {
  return on_device(op, first.device(), [&]() -> decltype(auto) {
    common_device(op, first, rest...);
    return cpu();
  });
}

}  // namespace metagrad::backend
