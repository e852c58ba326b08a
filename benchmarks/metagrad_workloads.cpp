// SPDX-License-Identifier: MIT
// Times one workload from workloads.hpp and prints one JSON line; compare_pytorch.py calls it
// alternately with the PyTorch version of the same workload. With --check FILE it instead runs one
// step and saves the step's inputs ("in.<name>") and outputs ("out.<name>") as safetensors, which
// compare_pytorch.py feeds to PyTorch and compares before timing. The JSON line also holds the
// growth of the peak resident set over the warm-up and timed steps (the memory the steps needed),
// which compare_pytorch.py measures the same way for PyTorch.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "metagrad/backend/threads.hpp"
#include "step_check.hpp"
#include "workloads.hpp"

namespace {

/// A field of /proc/self/status in kB (VmRSS, VmHWM), or nothing where there is no /proc.
std::optional<double> status_kb(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1));
  return std::nullopt;
}

/// Resets the peak resident set to the current one (Linux: "5" to /proc/self/clear_refs) and
/// returns the current one in kB; nothing where that is not possible.
std::optional<double> reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  if (!(clear << "5" << std::flush)) return std::nullopt;
  return status_kb("VmRSS");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Time one metagrad benchmark workload"};
  std::string name, device = "cpu", check_file;
  int threads = 1, iters = 20, warmup = 5;
  app.add_option("--workload", name, "workload name")->required();
  app.add_option("--threads", threads, "CPU threads");
  app.add_option("--iters", iters, "timed iterations");
  app.add_option("--warmup", warmup, "untimed iterations first");
  app.add_option("--device", device, "cpu (cuda comes with the CUDA backend)");
  app.add_option("--check", check_file, "save one step's inputs and outputs to this safetensors file; no timing");
  app.add_flag_callback("--list", [] {
    for (const auto& [n, f] : metagrad::bench::workloads()) std::cout << n << "\n";
    std::exit(0);
  });
  CLI11_PARSE(app, argc, argv);
  if (device != "cpu") {
    std::cerr << "metagrad_workloads: device '" << device << "' is not available in this build\n";
    return 2;
  }
  auto all = metagrad::bench::workloads();
  auto it = all.find(name);
  if (it == all.end()) {
    std::cerr << "metagrad_workloads: unknown workload '" << name << "' (see --list)\n";
    return 2;
  }
  metagrad::set_num_threads(threads);
  auto workload = it->second();
  if (!check_file.empty()) {
    metagrad::bench::save_step_check(workload, check_file);
    return 0;
  }
  const auto step = [&] { (void)workload.step(); };
  const auto rss_before = reset_peak_rss();
  metagrad::reset_peak_memory();
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  nlohmann::json out = {{"workload", name}, {"threads", threads}, {"median_ms", median}, {"min_ms", ms.front()}};
  if (const double f = metagrad::bench::flops(name); f > 0) out["gflops"] = f / median / 1e6;
  if (const auto peak = status_kb("VmHWM"); rss_before && peak) out["peak_rss_growth_mb"] = (*peak - *rss_before) / 1024;
  // What the tensors themselves needed at most, and what the buffer pool keeps for reuse at the
  // end: the resident set's growth is about their sum.
  const auto pool = metagrad::memory_stats();
  out["pool_peak_live_mb"] = static_cast<double>(pool.peak_bytes) / (1 << 20);
  out["pool_cached_mb"] = static_cast<double>(pool.cached_bytes) / (1 << 20);
  std::cout << out.dump() << std::endl;
}
