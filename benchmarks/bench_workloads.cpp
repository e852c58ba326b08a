// SPDX-License-Identifier: MIT
// Google Benchmark over the workloads of workloads.hpp at 1 and 2 threads. The side-by-side
// ratios against PyTorch come from compare_pytorch.py, which runs the same workloads.
#include <benchmark/benchmark.h>

#include "metagrad/backend/threads.hpp"
#include "workloads.hpp"

namespace {

void run_workload(benchmark::State& state, const std::string& name) {
  metagrad::set_num_threads(static_cast<int>(state.range(0)));
  auto workload = metagrad::bench::workloads().at(name)();
  (void)workload.step();  // warm the storage pool
  for (auto _ : state) benchmark::DoNotOptimize(workload.step());
  if (const double f = metagrad::bench::flops(name); f > 0)
    state.counters["FLOP/s"] = benchmark::Counter(f, benchmark::Counter::kIsIterationInvariantRate);
}

const bool registered = [] {
  for (const auto& [name, make] : metagrad::bench::workloads())
    benchmark::RegisterBenchmark(name.c_str(), [name = name](benchmark::State& s) { run_workload(s, name); })
        ->Arg(1)
        ->Arg(2)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
