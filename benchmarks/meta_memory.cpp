// SPDX-License-Identifier: MIT
// Peak memory of one meta step (the meta_step workload of meta_step.hpp: student MLP 784-128-10,
// K inner SGD steps on batches of 64, outer gradient to the explainer's φ) against K, for the
// plain unroll and the checkpointed one (segments of ⌈√K⌉ steps, or --segment; and bisection),
// with the time of each and the largest gap between their hypergradients (float32). Prints a table, then one JSON line (and
// writes it to --json FILE through a temporary file and a rename).
//   meta_memory [--ks 1,2,5,10,20,40] [--segment S] [--threads N] [--reps N] [--json FILE]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "meta_step.hpp"
#include "metagrad/backend/threads.hpp"
#include "metagrad/core/storage.hpp"
#include "metagrad/meta/checkpoint.hpp"

using namespace metagrad;

namespace {

struct Measured {
  double peak_mib = 0, ms = 0;
  Tensor<float> grad;
};

/// Peak live bytes above what was live before (the same every run), and the best wall time of
/// `reps` runs, of one hypergradient.
template <class Fn>
Measured measure(Fn&& fn, int reps) {
  Measured m;
  m.ms = 1e300;
  for (int r = 0; r < reps; ++r) {
    const std::int64_t before = memory_stats().live_bytes;
    reset_peak_memory();
    const auto t0 = std::chrono::steady_clock::now();
    m.grad = fn();
    m.ms = std::min(m.ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    m.peak_mib = static_cast<double>(memory_stats().peak_bytes - before) / (1024.0 * 1024.0);
  }
  return m;
}

double relative_gap(const Tensor<float>& a, const Tensor<float>& b) {
  double diff = 0, ref = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, static_cast<double>(std::abs(a.data()[i] - b.data()[i])));
    ref = std::max(ref, static_cast<double>(std::abs(b.data()[i])));
  }
  return diff / ref;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Peak memory of a meta step against the number of inner steps K, plain vs checkpointed"};
  std::vector<std::int64_t> ks = {1, 2, 5, 10, 20, 40};
  std::int64_t segment = 0;
  int threads = 1, reps = 3;
  std::string json_path;
  app.add_option("--ks", ks, "inner step counts")->delimiter(',');
  app.add_option("--segment", segment, "steps per checkpointed segment (0: ceil(sqrt(K)))")->check(CLI::NonNegativeNumber);
  app.add_option("--threads", threads, "CPU threads")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "timed runs per measurement (the best is reported)")->check(CLI::PositiveNumber);
  app.add_option("--json", json_path, "also write the JSON here");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  std::printf("%4s %8s %11s %11s %11s %10s %10s %10s %9s\n", "K", "segment", "plain MiB", "segs MiB", "bisect MiB",
              "plain ms", "segs ms", "bisect ms", "rel gap");
  for (const std::int64_t k : ks) {
    const bench::MetaStep problem(k);
    const std::int64_t seg =
        segment > 0 ? segment : std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(std::sqrt(double(k)))));
    (void)problem.hypergradient();  // warm the buffer pool's size classes, as a training loop would
    const auto plain = measure([&] { return problem.hypergradient(); }, reps);
    const auto ckpt = measure([&] {
      EnableGradGuard recording;
      const auto w = problem.feature_weights();
      return checkpointed_hypergradient<float>(problem.student, problem.step(w), problem.outer(), {problem.phi},
                                               {.steps = k, .segment = seg})
          .grads[0];
    }, reps);
    const auto bisect = measure([&] {
      EnableGradGuard recording;
      const auto w = problem.feature_weights();
      return checkpointed_hypergradient<float>(problem.student, problem.step(w), problem.outer(), {problem.phi},
                                               {.steps = k, .schedule = CheckpointSchedule::bisection})
          .grads[0];
    }, reps);
    const double gap = std::max(relative_gap(ckpt.grad, plain.grad), relative_gap(bisect.grad, plain.grad));
    std::printf("%4lld %8lld %11.2f %11.2f %11.2f %10.2f %10.2f %10.2f %9.1e\n", static_cast<long long>(k),
                static_cast<long long>(seg), plain.peak_mib, ckpt.peak_mib, bisect.peak_mib, plain.ms, ckpt.ms,
                bisect.ms, gap);
    std::fflush(stdout);
    rows.push_back({{"K", k},
                    {"segment", seg},
                    {"plain_peak_mib", plain.peak_mib},
                    {"checkpointed_peak_mib", ckpt.peak_mib},
                    {"plain_ms", plain.ms},
                    {"checkpointed_ms", ckpt.ms},
                    {"bisection_peak_mib", bisect.peak_mib},
                    {"bisection_ms", bisect.ms},
                    {"relative_gap", gap}});
  }
  const nlohmann::ordered_json out = {{"benchmark", "meta_memory"}, {"threads", threads}, {"dtype", "float32"},
                                      {"rows", rows}};
  std::cout << out.dump() << std::endl;
  if (!json_path.empty()) {
    const std::string tmp = json_path + ".tmp";
    {
      std::ofstream f(tmp);
      f << out.dump(1) << '\n';
      if (!f) {
        std::cerr << "meta_memory: cannot write " << tmp << "\n";
        return 1;
      }
    }
    std::filesystem::rename(tmp, json_path);
  }
}
