// SPDX-License-Identifier: MIT
#include "metagrad/explain/acd.hpp"
#include "test_util.hpp"

namespace acd_test {

using metagrad::AcdLevel;

/// Every region of level l lies inside one region of level l + 1, and a unit once in a region stays in one.
inline void check_nested(const std::vector<AcdLevel>& levels) {
  for (std::size_t l = 1; l < levels.size(); ++l) {
    const auto &lower = levels[l - 1].region, &upper = levels[l].region;
    std::vector<int> parent(levels[l - 1].score.size(), -2);
    for (std::size_t u = 0; u < lower.size(); ++u) {
      if (lower[u] < 0) continue;
      REQUIRE(upper[u] >= 0);
      auto& p = parent[static_cast<std::size_t>(lower[u])];
      if (p == -2) p = upper[u];
      CHECK(p == upper[u]);
    }
  }
}

/// The last level is one region over every unit.
inline void check_root(const std::vector<AcdLevel>& levels) {
  REQUIRE(!levels.empty());
  const auto& last = levels.back();
  CHECK(last.score.size() == 1);
  CHECK(std::all_of(last.region.begin(), last.region.end(), [](int r) { return r == 0; }));
}

/// The first level at which all `units` lie in one region that holds none of `others`; −1 if never.
inline int complete_at(const std::vector<AcdLevel>& levels, const std::vector<std::int64_t>& units,
                       const std::vector<std::int64_t>& others) {
  for (std::size_t l = 0; l < levels.size(); ++l) {
    const auto& region = levels[l].region;
    const int r = region[static_cast<std::size_t>(units[0])];
    if (r < 0) continue;
    const bool all_in = std::all_of(units.begin(), units.end(), [&](auto u) { return region[static_cast<std::size_t>(u)] == r; });
    const bool none_else = std::none_of(others.begin(), others.end(), [&](auto u) { return region[static_cast<std::size_t>(u)] == r; });
    if (all_in && none_else) return static_cast<int>(l);
  }
  return -1;
}

/// The first level at which unit a and unit b share a region.
inline int joined_at(const std::vector<AcdLevel>& levels, std::int64_t a, std::int64_t b) {
  for (std::size_t l = 0; l < levels.size(); ++l) {
    const int r = levels[l].region[static_cast<std::size_t>(a)];
    if (r >= 0 && r == levels[l].region[static_cast<std::size_t>(b)]) return static_cast<int>(l);
  }
  return -1;
}

/// A network with known interactions on a 6 × 10 image: for each of two 2 × 2 blobs, its pixel sum
/// minus 2·ReLU(its two "+" pixels − its two "−" pixels), plus 0.01 × every pixel. Under CD a blob's
/// "+" pixel alone scores about −1, its "−" pixel +1, the whole blob 4: a positive interaction
/// inside each blob and none between them (their terms add).
struct TwoBlobs {
  static constexpr std::int64_t H = 6, W = 10;
  std::vector<std::int64_t> a{2 * W + 1, 2 * W + 2, 3 * W + 1, 3 * W + 2};  // "+ −" over "− +"
  std::vector<std::int64_t> b{2 * W + 6, 2 * W + 7, 3 * W + 6, 3 * W + 7};
  metagrad::nn::Sequential<double> net;
  metagrad::Tensor<double> x;

  TwoBlobs() {
    using namespace metagrad;
    Generator gen(41);
    net.emplace_back<nn::Flatten<double>>();
    auto hidden = net.emplace_back<nn::Linear<double>>(H * W, 5, gen, false);
    net.emplace_back<nn::ReLU<double>>();
    auto out = net.emplace_back<nn::Linear<double>>(5, 1, gen, false);
    // Rows of `hidden`: sum of A, "+" minus "−" of A, the same for B, 0.01 × every pixel.
    double* w = hidden->weight.fresh_data();
    std::fill(w, w + 5 * H * W, 0.0);
    constexpr double sign[] = {1, -1, -1, 1};
    for (std::size_t k = 0; k < 4; ++k) {
      w[0 * H * W + a[k]] = 1;
      w[1 * H * W + a[k]] = sign[k];
      w[2 * H * W + b[k]] = 1;
      w[3 * H * W + b[k]] = sign[k];
    }
    for (std::int64_t p = 0; p < H * W; ++p) w[4 * H * W + p] = 0.01;
    constexpr double mix[] = {1, -2, 1, -2, 1};
    std::copy(mix, mix + 5, out->weight.fresh_data());
    // The blobs at 1 on a faint random background.
    x = rand<double>(Shape{1, 1, H, W}, gen, 0.0, 0.3);
    double* px = x.fresh_data();
    for (std::size_t k = 0; k < 4; ++k) px[a[k]] = px[b[k]] = 1;
  }
};

/// Scores with known interactions over 12 positions: 0.05 + 0.01·i for each position alone (the
/// two phrases' words 0.4 … 0.6), plus 2 for every pair of neighbours inside one phrase.
inline std::vector<double> two_phrases(const metagrad::AcdRegions& regions) {
  const std::vector<std::vector<std::int64_t>> phrases{{2, 3, 4}, {7, 8, 9}};
  const double alone[] = {0.05, 0.06, 0.5, 0.6, 0.4, 0.1, 0.11, 0.45, 0.55, 0.42, 0.15, 0.16};
  std::vector<double> out;
  for (const auto& r : regions) {
    double s = 0;
    for (auto i : r) s += alone[i];
    for (const auto& p : phrases)
      for (std::size_t k = 0; k + 1 < p.size(); ++k)
        if (std::binary_search(r.begin(), r.end(), p[k]) && std::binary_search(r.begin(), r.end(), p[k + 1])) s += 2;
    out.push_back(s);
  }
  return out;
}

}  // namespace acd_test

TEST_SUITE("explain.acd") {
  TEST_CASE("explain.acd: the percentile interpolates as numpy's") {
    using metagrad::detail::acd::percentile;
    CHECK(percentile({3, 1, 2, 4}, 50) == doctest::Approx(2.5));
    CHECK(percentile({3, 1, 2, 4}, 99) == doctest::Approx(3.97));
    CHECK(percentile({5}, 99.5) == 5);
    CHECK(percentile({1, 2}, 0) == 1);
  }

  TEST_CASE("explain.acd: each blob of a two-blob network is a component before the two join") {
    using namespace metagrad;
    acd_test::TwoBlobs m;
    // CD's scores are the ones built in: "−" pixel +1, "+" pixel −1 (and 0.01·x each), blob 4.
    const auto h = agglomerate(m.net, m.x, 0, AcdOptions{.max_levels = 100});
    CHECK(h.tile_scores[static_cast<std::size_t>(m.a[1])] == doctest::Approx(1.01));
    CHECK(h.tile_scores[static_cast<std::size_t>(m.a[0])] == doctest::Approx(-0.99));
    acd_test::check_nested(h.levels);
    acd_test::check_root(h.levels);
    const int a_done = acd_test::complete_at(h.levels, m.a, m.b), b_done = acd_test::complete_at(h.levels, m.b, m.a);
    const int joined = acd_test::joined_at(h.levels, m.a[0], m.b[0]);
    INFO("blob A complete at level ", a_done, ", blob B at ", b_done, ", joined at ", joined, " of ", h.levels.size());
    CHECK(a_done >= 0);
    CHECK(b_done >= 0);
    CHECK(a_done < joined);
    CHECK(b_done < joined);
    // The seeds are the "−" pixels (best alone); touching diagonally, they are one component. The
    // "+" pixels, negative alone, join through their interaction gain.
    const auto& first = h.levels[0].region;
    CHECK(first[static_cast<std::size_t>(m.a[1])] >= 0);
    CHECK(first[static_cast<std::size_t>(m.a[1])] == first[static_cast<std::size_t>(m.a[2])]);
    CHECK(first[static_cast<std::size_t>(m.a[0])] == -1);
    CHECK(a_done == 1);
    // The complete blob scores what the network gives it: 4 plus 0.01 × its pixels.
    const auto& done = h.levels[static_cast<std::size_t>(a_done)];
    CHECK(done.score[static_cast<std::size_t>(done.region[static_cast<std::size_t>(m.a[0])])] ==
          doctest::Approx(4.04).epsilon(0.02));
    // The whole image as the mask: CD's rel is the logit itself.
    CHECK(h.levels.back().score[0] == doctest::Approx(m.net.forward(m.x)(0, 0)).epsilon(1e-9));
  }

  TEST_CASE("explain.acd: 2-D levels nest and end in the whole image, on tiles and after pairwise merges") {
    using namespace metagrad;
    Generator gen(31);
    nn::Sequential<double> net;
    net.emplace_back<nn::Conv2d<double>>(1, 3, Size2d{3}, gen, nn::Conv2dOptions{.padding = 1});
    net.emplace_back<nn::ReLU<double>>();
    net.emplace_back<nn::Flatten<double>>();
    net.emplace_back<nn::Linear<double>>(3 * 7 * 9, 4, gen);
    const auto x = randn<double>(Shape{1, 1, 7, 9}, gen);
    for (const int max_levels : {2, 100}) {
      const auto h = agglomerate(net, x, 2, AcdOptions{.tile = 2, .max_levels = max_levels, .max_batch = 7});
      REQUIRE((h.rows == 4 && h.cols == 5 && h.tile == 2 && h.tile_scores.size() == 20));
      CHECK(h.grown_levels <= static_cast<std::size_t>(max_levels));
      acd_test::check_nested(h.levels);
      acd_test::check_root(h.levels);
      CHECK(h.levels.back().score[0] == doctest::Approx(net.forward(x)(0, 2)).epsilon(1e-9));
      // The first level holds the best tile alone.
      const auto best = std::max_element(h.tile_scores.begin(), h.tile_scores.end()) - h.tile_scores.begin();
      CHECK(h.levels[0].region[static_cast<std::size_t>(best)] >= 0);
    }
  }

  TEST_CASE("explain.acd: agglomerate_2d over a score function merges pairs by their gain") {
    using namespace metagrad;
    // Additive scores on a 1 × 7 strip: tiles 0 and 6 strong, the rest 0; 2 growth levels leave
    // the two ends apart, and the pairwise merges then join everything picked.
    const double alone[] = {5, 0, 0, 0, 0, 0, 4};
    auto score = [&](const AcdRegions& regions) {
      std::vector<double> s;
      for (const auto& r : regions) {
        double v = 0;
        for (auto t : r) v += alone[t];
        s.push_back(v);
      }
      return s;
    };
    const auto h = agglomerate_2d(1, 7, score, AcdOptions{.percentile = 80, .max_levels = 1});
    REQUIRE(h.grown_levels == 1);
    REQUIRE(h.levels.size() == 3);  // the two ends, their merge, the root
    CHECK(h.levels[0].score.size() == 2);
    CHECK(h.levels[1].score == std::vector<double>{9});
    CHECK(h.levels[1].region[3] == -1);
    acd_test::check_nested(h.levels);
    acd_test::check_root(h.levels);
  }

  TEST_CASE("explain.acd: 1-D ACD finds each phrase before joining them") {
    using namespace metagrad;
    std::int64_t calls = 0;
    const auto h = agglomerate_1d(
        12,
        [&](const AcdRegions& r) {
          ++calls;
          return acd_test::two_phrases(r);
        },
        Acd1dOptions{});
    CHECK(h.length == 12);
    CHECK(h.unit_scores[3] == doctest::Approx(0.6));
    // One call for the positions alone, one per level (and one for a root added at the end).
    CHECK(calls <= static_cast<std::int64_t>(h.levels.size()) + 1);
    acd_test::check_nested(h.levels);
    acd_test::check_root(h.levels);
    const int p1 = acd_test::complete_at(h.levels, {2, 3, 4}, {7, 8, 9});
    const int p2 = acd_test::complete_at(h.levels, {7, 8, 9}, {2, 3, 4});
    const int joined = acd_test::joined_at(h.levels, 3, 8);
    INFO("phrase 1 complete at level ", p1, ", phrase 2 at ", p2, ", joined at ", joined);
    CHECK(p1 >= 0);
    CHECK(p2 >= 0);
    CHECK(p1 < joined);
    CHECK(p2 < joined);
    // The phrase is grown from its best word, one neighbour per level: {3}, {2, 3}, {2, 3, 4}.
    CHECK(h.levels[0].score.size() == 1);
    CHECK(h.levels[0].region[3] == 0);
    CHECK(p1 == 2);
    // Every region is a contiguous span.
    for (const auto& level : h.levels)
      for (std::size_t i = 1; i + 1 < level.region.size(); ++i)
        if (level.region[i - 1] >= 0 && level.region[i - 1] == level.region[i + 1]) CHECK(level.region[i] == level.region[i - 1]);
  }

  TEST_CASE("explain.acd: 1-D ACD with few levels still ends in one span over all") {
    using namespace metagrad;
    const auto h = agglomerate_1d(12, acd_test::two_phrases, Acd1dOptions{.max_levels = 2});
    CHECK(h.levels.size() == 3);
    acd_test::check_nested(h.levels);
    acd_test::check_root(h.levels);
    const auto one = agglomerate_1d(1, acd_test::two_phrases);
    REQUIRE(one.levels.size() == 1);
    CHECK(one.levels[0].region[0] == 0);
  }

  TEST_CASE("explain.acd: bad input") {
    using namespace metagrad;
    Generator gen(32);
    nn::Sequential<double> net;
    net.emplace_back<nn::Flatten<double>>();
    METAGRAD_CHECK_ERROR(agglomerate(net, randn<double>(Shape{2, 1, 4, 4}, gen), 0), "agglomerate", "[2, 1, 4, 4]");
    METAGRAD_CHECK_ERROR(agglomerate(net, randn<double>(Shape{1, 1, 4, 4}, gen), 0, AcdOptions{.tile = 0}), "agglomerate",
                         "tile");
    METAGRAD_CHECK_ERROR(agglomerate(net, randn<double>(Shape{1, 1, 4, 4}, gen), 16), "agglomerate", "target 16",
                         "[16, 16]");
    METAGRAD_CHECK_ERROR(agglomerate(net, randn<double>(Shape{1, 1, 4, 4}, gen), 0, AcdOptions{.percentile = 101}),
                         "agglomerate_2d", "percentile 101");
    METAGRAD_CHECK_ERROR(agglomerate_1d(0, acd_test::two_phrases), "agglomerate_1d", "length 0");
    METAGRAD_CHECK_ERROR(agglomerate_1d(5, acd_test::two_phrases, Acd1dOptions{.max_levels = 0}), "agglomerate_1d",
                         "max_levels 0");
    METAGRAD_CHECK_ERROR(agglomerate_1d(5, [](const AcdRegions&) { return std::vector<double>{1.0}; }),
                         "agglomerate_1d", "1 scores for 5 regions");
    METAGRAD_CHECK_ERROR(agglomerate_2d(0, 3, acd_test::two_phrases), "agglomerate_2d", "0 x 3");
  }
}
