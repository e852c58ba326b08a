// SPDX-License-Identifier: MIT
// Generator: a seeded 64-bit Mersenne Twister. Every random op and layer takes one explicitly or
// uses the thread's default generator (seeded with manual_seed), so a seed gives bit-identical results.
#pragma once
#include <cstdint>
#include <cmath>
#include <random>

namespace metagrad {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
  /// Restarts the stream; a Box-Muller value left over from the old one is discarded.
  void seed(std::uint64_t s) {
    engine_.seed(s);
    has_spare_ = false;
  }
  std::mt19937_64& engine() { return engine_; }

  /// Uniform in [0, 1) from 53 random bits (exact and portable, unlike std::uniform_real_distribution).
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  /// Standard normal by Box-Muller; portable across standard libraries.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = 0;
    do u1 = uniform(); while (u1 <= 0);
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1)), t = 6.283185307179586476925 * u2;
    spare_ = r * std::sin(t);
    has_spare_ = true;
    return r * std::cos(t);
  }
  /// Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n) {
    // Rejection sampling keeps it unbiased and the same on every platform.
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t v;
    do v = engine_(); while (v >= limit);
    return v % n;
  }

 private:
  std::mt19937_64 engine_;
  double spare_ = 0;
  bool has_spare_ = false;
};

/// The generator every random function and layer constructor uses when given none. Unlike
/// PyTorch's single process-wide CPU generator (which takes a lock on every draw), there is one
/// per thread: draws need no lock and a thread's stream is never perturbed by draws on another
/// thread, so a seeded run stays bit-identical whatever else runs. The cost of the choice: each new
/// thread starts from the fixed seed 0x5eed, and manual_seed seeds only the calling thread's
/// generator. Library kernels never draw (OpenMP workers do not touch it), so for the usual
/// single-threaded script manual_seed(n) acts exactly like torch.manual_seed(n); code that builds
/// models or draws on several threads should seed each thread, or pass each its own Generator.
inline Generator& default_generator() {
  thread_local Generator gen(0x5eed);
  return gen;
}
/// Reseeds the calling thread's default generator (torch.manual_seed).
inline void manual_seed(std::uint64_t seed) { default_generator().seed(seed); }

}  // namespace metagrad
