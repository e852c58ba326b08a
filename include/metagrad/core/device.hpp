// SPDX-License-Identifier: MIT
// Device: where a tensor's storage lives. The CPU is always there; cuda:N is the seam the CUDA
// backend (METAGRAD_WITH_CUDA) plugs into. A CPU-only build rejects CUDA tensors with a clear error.
#pragma once
#include <ostream>
#include <string>

namespace metagrad {

enum class DeviceType { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  friend bool operator==(const Device&, const Device&) = default;
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
  friend std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }
};

}  // namespace metagrad
