// SPDX-License-Identifier: MIT
#include "metagrad/explain/acd.hpp"
#include "test_util.hpp"

using namespace metagrad;

TEST_SUITE("explain.acd") {
  TEST_CASE("explain.acd: regions only grow and merge, and the last level is the whole image") {
    Generator gen(31);
    nn::Sequential<double> net;
    net.emplace_back<nn::Conv2d<double>>(1, 3, Size2d{3}, gen, nn::Conv2dOptions{.padding = 1});
    net.emplace_back<nn::ReLU<double>>();
    net.emplace_back<nn::Flatten<double>>();
    net.emplace_back<nn::Linear<double>>(3 * 8 * 8, 4, gen);
    const auto x = randn<double>(Shape{1, 1, 8, 8}, gen);
    const auto h = agglomerate(net, x, 2, AcdOptions{.tile = 2, .seed_fraction = 0.1});
    REQUIRE((h.rows == 4 && h.cols == 4 && h.tile_scores.size() == 16));
    REQUIRE(!h.levels.empty());
    // A tile in a region stays in one; two tiles that share a region keep sharing one.
    for (std::size_t l = 1; l < h.levels.size(); ++l)
      for (std::size_t a = 0; a < 16; ++a) {
        if (h.levels[l - 1].region[a] >= 0) CHECK(h.levels[l].region[a] >= 0);
        for (std::size_t b = 0; b < 16; ++b)
          if (h.levels[l - 1].region[a] >= 0 && h.levels[l - 1].region[a] == h.levels[l - 1].region[b])
            CHECK(h.levels[l].region[a] == h.levels[l].region[b]);
      }
    const auto& last = h.levels.back();
    CHECK(std::all_of(last.region.begin(), last.region.end(), [](int r) { return r == 0; }));
    REQUIRE(last.score.size() == 1);
    // The whole image as the mask: CD's rel is the logit itself.
    CHECK(last.score[0] == doctest::Approx(net.forward(x)(0, 2)).epsilon(1e-9));
    // The first seed is the best single tile.
    const auto best = std::max_element(h.tile_scores.begin(), h.tile_scores.end()) - h.tile_scores.begin();
    CHECK(h.levels[0].region[static_cast<std::size_t>(best)] >= 0);
  }

  TEST_CASE("explain.acd: bad input") {
    Generator gen(32);
    nn::Sequential<double> net;
    net.emplace_back<nn::Flatten<double>>();
    METAGRAD_CHECK_ERROR(agglomerate(net, randn<double>(Shape{2, 1, 4, 4}, gen), 0), "agglomerate", "[2, 1, 4, 4]");
  }
}
