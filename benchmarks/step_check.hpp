// SPDX-License-Identifier: MIT
// --check FILE of the workload runners (metagrad_workloads, profile_step): one step's inputs and
// outputs in a safetensors file, which compare_pytorch.py feeds to PyTorch and compares before it
// times or profiles anything.
#pragma once
#include <string>
#include <variant>

#include "metagrad/io/safetensors.hpp"
#include "workloads.hpp"

namespace metagrad::bench {

inline void save_step_check(Workload& workload, const std::string& file) {
  io::Checkpoint saved;
  for (const auto& [input, t] : workload.inputs.entries())
    // A copy: a step may change its inputs in place (an optimizer step updates the parameters).
    std::visit([&](const auto& tensor) { saved.insert("in." + input, clone(tensor.detach())); }, t);
  saved.insert(workload.step(), "out.");
  io::save_safetensors(file, saved);
}

}  // namespace metagrad::bench
