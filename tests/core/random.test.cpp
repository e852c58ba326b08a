// SPDX-License-Identifier: MIT
#include <cmath>
#include <cstring>
#include <thread>

#include "metagrad/core/creation.hpp"
#include "test_util.hpp"

using namespace metagrad;

namespace {
template <class T>
bool bit_identical(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.numel())) == 0;
}

struct Moments {
  double mean = 0, stddev = 0;
};
template <class T>
Moments moments(const Tensor<T>& t) {
  double s = 0, s2 = 0;
  for (T v : t.values()) s += v;
  const double m = s / static_cast<double>(t.numel());
  for (T v : t.values()) s2 += (v - m) * (v - m);
  return {m, std::sqrt(s2 / static_cast<double>(t.numel() - 1))};
}

constexpr std::int64_t kDraws = 100'000;
}  // namespace

TEST_SUITE("core.random") {
  TEST_CASE("core.random: the same seed gives bit-identical draws") {
    Generator a(2024), b(2024);
    CHECK(bit_identical(randn<double>(Shape{257}, a), randn<double>(Shape{257}, b)));
    CHECK(bit_identical(rand<float>(Shape{3, 7}, a), rand<float>(Shape{3, 7}, b)));
    CHECK(bit_identical(randint(-5, 5, Shape{100}, a), randint(-5, 5, Shape{100}, b)));
    CHECK(bit_identical(bernoulli<double>(Shape{64}, 0.3, a), bernoulli<double>(Shape{64}, 0.3, b)));
    // An odd count leaves a spare Box-Muller value; reseeding must discard it.
    a.seed(9);
    b = Generator(9);
    CHECK(a.normal() == b.normal());
  }

  TEST_CASE("core.random: manual_seed makes the default generator reproducible") {
    manual_seed(77);
    const auto first = randn<double>(Shape{33});
    manual_seed(77);
    CHECK(bit_identical(first, randn<double>(Shape{33})));
    // Each thread has its own default generator, so threads do not perturb each other's streams.
    manual_seed(77);
    std::thread([] { (void)randn<double>(Shape{1000}); }).join();
    CHECK(bit_identical(first, randn<double>(Shape{33})));
  }

  TEST_CASE("core.random: different seeds give different draws") {
    Generator a(1), b(2);
    CHECK_FALSE(bit_identical(randn<double>(Shape{16}, a), randn<double>(Shape{16}, b)));
    CHECK_FALSE(bit_identical(rand<double>(Shape{16}, a), rand<double>(Shape{16}, b)));
    // And successive draws from one generator differ.
    CHECK_FALSE(bit_identical(rand<double>(Shape{16}, a), rand<double>(Shape{16}, a)));
  }

  TEST_CASE("core.random: the engine is the standard mt19937_64, so streams are portable") {
    Generator gen(5489);  // the standard's default seed
    for (int i = 1; i < 10000; ++i) gen.engine()();
    CHECK(gen.engine()() == 9981545732273789042ull);  // [rand.predef]: the 10000th value
    Generator first(5489);
    // uniform() is the top 53 bits of the first draw, 14514284786278117030, scaled by 2⁻⁵³.
    CHECK(first.uniform() == std::ldexp(static_cast<double>(14514284786278117030ull >> 11), -53));
  }

  TEST_CASE("core.random: randn has the requested mean and standard deviation") {
    Generator gen(31);
    const auto m = moments(randn<double>(Shape{kDraws}, gen));
    // Standard errors: 1/sqrt(n) ≈ 0.0032 for the mean, 1/sqrt(2n) ≈ 0.0022 for the deviation.
    CHECK(std::abs(m.mean) < 0.015);
    CHECK(std::abs(m.stddev - 1.0) < 0.011);
    const auto shifted = moments(randn<float>(Shape{kDraws}, gen, 3.0f, 0.5f));
    CHECK(std::abs(shifted.mean - 3.0) < 0.0075);
    CHECK(std::abs(shifted.stddev - 0.5) < 0.0055);
  }

  TEST_CASE("core.random: rand is uniform on [low, high)") {
    Generator gen(8);
    const auto u = rand<double>(Shape{kDraws}, gen, -2.0, 4.0);
    double lo = 1e9, hi = -1e9;
    for (double v : u.values()) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    CHECK(lo >= -2.0);
    CHECK(hi < 4.0);
    CHECK(lo < -1.99);
    CHECK(hi > 3.99);
    const auto m = moments(u);
    CHECK(std::abs(m.mean - 1.0) < 0.03);                   // sd of the mean: sqrt(3)/sqrt(n) ≈ 0.0055
    CHECK(std::abs(m.stddev - std::sqrt(3.0)) < 0.02);      // 6/sqrt(12)
  }

  TEST_CASE("core.random: randint covers its range evenly; bernoulli has rate p") {
    Generator gen(12);
    const auto r = randint(-3, 4, Shape{kDraws}, gen);
    std::vector<std::int64_t> counts(7, 0);
    std::int64_t outside = 0;
    for (auto v : r.values()) {
      if (v < -3 || v >= 4) ++outside;
      else ++counts[static_cast<std::size_t>(v + 3)];
    }
    CHECK(outside == 0);
    const double expected = static_cast<double>(kDraws) / 7;  // sd ≈ 110
    for (auto c : counts) CHECK(std::abs(static_cast<double>(c) - expected) < 600);
    const auto b = bernoulli<double>(Shape{kDraws}, 0.25, gen);
    CHECK(std::abs(moments(b).mean - 0.25) < 0.007);  // sd ≈ 0.0014
    CHECK(moments(bernoulli<double>(Shape{100}, 0.0, gen)).mean == 0.0);
    CHECK(moments(bernoulli<double>(Shape{100}, 1.0, gen)).mean == 1.0);
  }
}
