// SPDX-License-Identifier: MIT
// Runs one workload of workloads.hpp for a profiler: builds it, runs the warm-up steps, prints
// "ready" and waits for a line on stdin, then runs the timed steps and prints one JSON line.
// profile_workloads.py attaches `perf record -p` between "ready" and the line it sends, so the
// profile holds the steps only, not the set-up (building the inputs, loading the model), which for
// the small workloads would otherwise be a large share of the samples; after the JSON line it waits
// for a second line (or the end of stdin), so that the profiler detaches before the teardown. The JSON line gives the
// user and system CPU time of the timed steps (getrusage): the CPU time per step, which on a
// shared machine is steadier than the wall time, and a cross-check of the kernel samples' share
// (page faults on fresh buffers, mostly; perf samples the kernel only where it is allowed to).
// --check FILE saves one step's inputs and outputs as metagrad_workloads --check does, so that
// compare_pytorch.check() can confirm the PyTorch step profiled beside it does the same maths.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>
#include <variant>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "metagrad/backend/threads.hpp"
#include "step_check.hpp"
#include "workloads.hpp"

namespace profile_step {

struct CpuSeconds {
  double user = 0, system = 0;
};

CpuSeconds cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec); };
  return {seconds(usage.ru_utime), seconds(usage.ru_stime)};
}

}  // namespace profile_step

int main(int argc, char** argv) {
  CLI::App app{"Run one metagrad benchmark workload under a profiler"};
  std::string name, check_file, device = "cpu";
  int threads = 1, iters = 20, warmup = 3;
  app.add_option("--workload", name, "workload name (metagrad_workloads --list)")->required();
  app.add_option("--threads", threads, "CPU threads");
  app.add_option("--iters", iters, "profiled steps")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "steps before the profiler attaches");
  app.add_option("--check", check_file, "save one step's inputs and outputs to this safetensors file; no profiling");
  app.add_option("--device", device, "cpu only (accepted because compare_pytorch.check passes it)")->check(CLI::IsMember({"cpu"}));
  CLI11_PARSE(app, argc, argv);
  auto all = metagrad::bench::workloads();
  const auto it = all.find(name);
  if (it == all.end()) {
    std::cerr << "profile_step: unknown workload '" << name << "'\n";
    return 2;
  }
  metagrad::set_num_threads(threads);
  auto workload = it->second();
  if (!check_file.empty()) {
    metagrad::bench::save_step_check(workload, check_file);
    return 0;
  }
  for (int i = 0; i < warmup; ++i) (void)workload.step();
  std::cout << "ready" << std::endl;
  std::string go;
  std::getline(std::cin, go);

  const auto cpu_before = profile_step::cpu_seconds();
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    (void)workload.step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const auto cpu_after = profile_step::cpu_seconds();
  std::sort(ms.begin(), ms.end());
  const nlohmann::json out = {{"workload", name},
                              {"threads", threads},
                              {"iters", iters},
                              {"median_ms", ms[ms.size() / 2]},
                              {"user_s", cpu_after.user - cpu_before.user},
                              {"system_s", cpu_after.system - cpu_before.system}};
  std::cout << out.dump() << std::endl;
  // Wait until the profiler has detached, so that the samples hold no teardown (freeing the pool).
  std::getline(std::cin, go);
}
