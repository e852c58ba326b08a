// SPDX-License-Identifier: MIT
#include <cmath>
#include <memory>
#include <vector>

#include "metagrad/learn/blob_sampler.hpp"
#include "metagrad/learn/cdep.hpp"
#include "metagrad/learn/cdep_networks.hpp"
#include "metagrad/learn/erm.hpp"
#include "metagrad/learn/expected_gradients.hpp"
#include "metagrad/learn/gradient_sum.hpp"
#include "metagrad/nn/conv.hpp"
#include "metagrad/nn/flatten.hpp"
#include "metagrad/nn/pool.hpp"
#include "metagrad/ops/softmax.hpp"
#include "loss_fixtures.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::learn;
using namespace metagrad::learn_test;

namespace cdep_test {

/// A LeNet in miniature: conv(1→2, 3) → ReLU → maxpool 2 → flatten → 8→4 → ReLU → 4→3, on 1×6×6.
inline Net tiny_lenet(Generator& gen) {
  auto net = std::make_shared<nn::Sequential<double>>();
  net->emplace_back<nn::Conv2d<double>>(1, 2, 3, gen);
  net->emplace_back<nn::ReLU<double>>();
  net->emplace_back<nn::MaxPool2d<double>>(2);
  net->emplace_back<nn::Flatten<double>>();
  net->emplace_back<nn::Linear<double>>(8, 4, gen);
  net->emplace_back<nn::ReLU<double>>();
  net->emplace_back<nn::Linear<double>>(4, 3, gen);
  return net;
}

/// Flatten → C·H·W → hidden → tanh → classes: smooth, for finite differences of input gradients.
inline Net tanh_image_mlp(std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t hidden, std::int64_t classes,
                          Generator& gen) {
  auto net = std::make_shared<nn::Sequential<double>>();
  net->emplace_back<nn::Flatten<double>>();
  net->emplace_back<nn::Linear<double>>(c * h * w, hidden, gen);
  net->emplace_back<nn::Tanh<double>>();
  net->emplace_back<nn::Linear<double>>(hidden, classes, gen);
  return net;
}

/// Single-pixel spatial blobs [B, 1, 1, H, W] at the given pixels.
inline Tensor<double> pixel_blobs(const std::vector<std::int64_t>& pixels, std::int64_t h, std::int64_t w) {
  const auto b = static_cast<std::int64_t>(pixels.size());
  auto m = zeros<double>(Shape{b, 1, 1, h, w});
  for (std::int64_t k = 0; k < b; ++k) m.fresh_data()[k * h * w + pixels[static_cast<std::size_t>(k)]] = 1;
  return m;
}

inline IndexTensor labels(const std::vector<std::int64_t>& y) {
  return from_vector<std::int64_t>(y, Shape{static_cast<std::int64_t>(y.size())});
}

inline double sigmoid(double v) { return 1 / (1 + std::exp(-v)); }

}  // namespace cdep_test

TEST_SUITE("learn.cdep") {
  TEST_CASE("learn.cdep: the penalty of a linear model equals the hand computation of the bias split") {
    Generator gen(21);
    nn::Linear<double> net(3, 2, gen);
    const auto x = randn<double>(Shape{4, 3}, gen);
    // Two blobs shared by every example: feature 0, and features 1 and 2.
    const auto blobs = from_vector<double>({1, 0, 0, 0, 1, 1}, Shape{2, 1, 3});
    double expected = 0;
    for (std::int64_t b = 0; b < 2; ++b) {
      double mean = 0;
      for (std::int64_t n = 0; n < 4; ++n)
        for (std::int64_t c = 0; c < 2; ++c) {
          double r = 0, i = 0;
          for (std::int64_t f = 0; f < 3; ++f) {
            const double m = blobs(b, 0, f);
            r += net.weight(c, f) * x(n, f) * m;
            i += net.weight(c, f) * x(n, f) * (1 - m);
          }
          const double share = (std::abs(r) + 1e-20) / (std::abs(r) + std::abs(i) + 2e-20);
          const double rel = r + net.bias(c) * share, irrel = i + net.bias(c) * (1 - share);
          CHECK(rel + irrel == doctest::Approx(r + i + net.bias(c)).epsilon(1e-12));
          mean += cdep_test::sigmoid(rel - irrel) / 8.0;
        }
      expected += mean;  // summed over blobs, as CDEP's ColorMNIST script does
    }
    CHECK(cdep_penalty(net, x, blobs).item() == doctest::Approx(expected).epsilon(1e-12));
    // The loss adds λ times it to the cross entropy.
    const auto y = cdep_test::labels({0, 1, 1, 0});
    Cdep<double> loss({.lambda = 3}, [&](const Batch<double>&) { return blobs; });
    const double ce = cross_entropy(net.forward(x), y).item();
    CHECK(loss(net, {x, y, {}, {}}).item() == doctest::Approx(ce + 3 * expected).epsilon(1e-12));
  }

  TEST_CASE("learn.cdep: the penalty of a LeNet passes gradcheck in the parameters, to second order") {
    Generator gen(22);
    auto net = cdep_test::tiny_lenet(gen);
    Batch<double> b{randn<double>(Shape{3, 1, 6, 6}, gen), cdep_test::labels({0, 2, 1}), {}, {}};
    const auto blobs = cdep_test::pixel_blobs({7, 14, 28}, 6, 6);
    Cdep<double> loss({.lambda = 2}, [&](const Batch<double>&) { return blobs; });
    const auto result = gradcheck(loss_of_params(net, loss, b), net->parameters(), {.order = 2});
    CHECK_MESSAGE(result.ok, result.report);
    // The penalty moves: a parameter gradient that is zero would pass gradcheck trivially.
    const auto g = grad(cdep_penalty(net, b.x, blobs), net->parameters());
    double norm = 0;
    for (const auto& t : g)
      for (double v : t.values()) norm += v * v;
    CHECK(norm > 1e-8);
  }

  TEST_CASE("learn.cdep: batching the blobs gives the sum of one CD per blob") {
    Generator gen(23);
    auto net = cdep_test::tiny_lenet(gen);
    const auto x = randn<double>(Shape{4, 1, 6, 6}, gen);
    const auto blobs = cdep_test::pixel_blobs({0, 20, 35}, 6, 6);
    double looped = 0;
    for (std::int64_t k = 0; k < 3; ++k) looped += cdep_penalty(net, x, slice(blobs, 0, k, k + 1)).item();
    CHECK(cdep_penalty(net, x, blobs).item() == doctest::Approx(looped).epsilon(1e-12));
    // Per-example blobs [1, N, ...] (the batch's own mask) work the same way.
    Batch<double> b{x, cdep_test::labels({0, 1, 2, 0}), broadcast_to(select(blobs, 0, 1), x.shape()) * 1.0, {}};
    CHECK(cdep_penalty(net, x, blobs_from_batch<double>()(b)).item() ==
          doctest::Approx(cdep_penalty(net, x, slice(blobs, 0, 1, 2)).item()).epsilon(1e-12));
  }

  TEST_CASE("learn.cdep: a few steps of NLL + λ·CDEP lower the blob's share where a spurious feature exists") {
    Generator gen(24);
    // The last feature is the label itself (a perfect shortcut); the blob marks it.
    const auto b = decoy_batch(48, 5, 3, gen, 0.8);
    const auto blob = from_vector<double>({0, 0, 0, 0, 1}, Shape{1, 1, 5});
    auto erm_net = tanh_mlp(5, 8, 3, gen);
    auto cdep_net = tanh_mlp(5, 8, 3, gen);
    cdep_net->load_state_dict(erm_net->state_dict());
    const double before = cdep_penalty(erm_net, b.x, blob).item();
    Erm<double> erm;
    Cdep<double> cdep({.lambda = 5}, [&](const Batch<double>&) { return blob; });
    adam_steps(erm_net, erm, b, 60, 0.05);
    adam_steps(cdep_net, cdep, b, 60, 0.05);
    const double after_erm = cdep_penalty(erm_net, b.x, blob).item();
    const double after_cdep = cdep_penalty(cdep_net, b.x, blob).item();
    INFO("share before ", before, ", after ERM ", after_erm, ", after CDEP ", after_cdep);
    CHECK(after_erm > 0.5);  // ERM leans on the shortcut
    CHECK(after_cdep < 0.5 * before);
    CHECK(after_cdep < 0.5 * after_erm);
  }

  TEST_CASE("learn.cdep: the blob sampler draws pixels with the given frequencies") {
    const std::vector<double> p{0.1, 0.0, 0.2, 0.3, 0.15, 0.25};
    BlobSampler sampler(std::vector<double>{2, 0, 4, 6, 3, 5}, 2, 3, 8, 31);  // normalized inside
    std::vector<double> count(6, 0);
    const int draws = 5000;
    for (int d = 0; d < draws; ++d)
      for (auto px : sampler.draw_pixels()) count[static_cast<std::size_t>(px)] += 1;
    CHECK(count[1] == 0);  // a pixel of probability 0 is never drawn
    double chi2 = 0;
    const double total = draws * 8.0;
    for (std::size_t i = 0; i < 6; ++i)
      if (p[i] > 0) chi2 += (count[i] - total * p[i]) * (count[i] - total * p[i]) / (total * p[i]);
    INFO("chi-square ", chi2);
    CHECK(chi2 < 18.47);  // 4 degrees of freedom, p = 0.001
    // Masks: [8, 1, 1, H, W], one 1 each; the same seed gives the same draws.
    BlobSampler a(p, 2, 3, 8, 5), b(p, 2, 3, 8, 5);
    const auto m = a.draw<double>();
    CHECK(m.shape() == Shape{8, 1, 1, 2, 3});
    CHECK(sum(m).item() == 8);
    CHECK(testing::same(m, b.draw<double>()));
  }

  TEST_CASE("learn.cdep: the Grad penalty equals the masked, channel-summed NLL input gradient squared") {
    Generator gen(25);
    nn::Sequential<double> net;
    net.emplace_back<nn::Flatten<double>>();
    const auto fc = net.emplace_back<nn::Linear<double>>(2 * 2 * 3, 4, gen);
    const auto x = randn<double>(Shape{3, 2, 2, 3}, gen);
    const auto y = cdep_test::labels({1, 3, 0});
    const auto blobs = cdep_test::pixel_blobs({0, 4, 4}, 2, 3);  // pixel 4 twice: it counts twice
    // ∂ mean NLL / ∂x_n = Wᵀ (p_n − e_{y_n}) / N.
    const auto p = softmax(net.forward(x), 1);
    double expected = 0;
    for (std::int64_t n = 0; n < 3; ++n)
      for (std::int64_t pix : {0, 4, 4}) {
        double s = 0;
        for (std::int64_t c = 0; c < 2; ++c)
          for (std::int64_t k = 0; k < 4; ++k)
            s += fc->weight(k, c * 6 + pix) * (p(n, k) - (y(n) == k ? 1.0 : 0.0)) / 3.0;
        expected += s * s;
      }
    const auto r = gradient_sum_penalty(net, x, y, blobs);
    CHECK(r.penalty.item() == doctest::Approx(expected).epsilon(1e-10));
    CHECK(r.nll.item() == doctest::Approx(cross_entropy(net.forward(x), y).item()).epsilon(1e-12));
  }

  TEST_CASE("learn.cdep: the Grad loss passes gradcheck in the parameters") {
    Generator gen(26);
    auto net = cdep_test::tanh_image_mlp(2, 3, 3, 4, 3, gen);
    Batch<double> b{randn<double>(Shape{3, 2, 3, 3}, gen), cdep_test::labels({0, 2, 1}), {}, {}};
    const auto blobs = cdep_test::pixel_blobs({1, 5}, 3, 3);
    GradientSum<double> loss({.lambda = 50}, [&](const Batch<double>&) { return blobs; });
    const auto result = gradcheck(loss_of_params(net, loss, b), net->parameters());
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("learn.cdep: the EG map matches finite differences along the sampled paths") {
    Generator gen(27);
    auto net = cdep_test::tanh_image_mlp(2, 2, 2, 5, 3, gen);
    const auto x = randn<double>(Shape{3, 2, 2, 2}, gen);
    const auto y = cdep_test::labels({2, 0, 1});
    Generator draw_gen(8);
    const auto draw = draw_eg_references(3, 4, draw_gen);
    for (auto r : draw.references) CHECK((r >= 0 && r < 3));
    for (double a : draw.alphas) CHECK((a >= 0 && a < 1));
    const auto map = expected_gradients_map(*net, x, y, draw, false);
    REQUIRE(map.shape() == Shape{3, 2, 2});
    const auto prob = [&](const std::vector<double>& v, std::int64_t label) {
      const auto z = net->forward(from_vector<double>(v, Shape{1, 2, 2, 2}));
      return softmax(z, 1)(0, label);
    };
    for (std::int64_t n = 0; n < 3; ++n)
      for (std::int64_t pix = 0; pix < 4; ++pix) {
        double expected = 0;
        for (std::int64_t k = 0; k < 4; ++k) {
          const auto idx = static_cast<std::size_t>(n * 4 + k);
          const std::int64_t r = draw.references[idx];
          const double alpha = draw.alphas[idx];
          std::vector<double> path(8);
          for (std::int64_t f = 0; f < 8; ++f) path[f] = x.data()[r * 8 + f] + alpha * (x.data()[n * 8 + f] - x.data()[r * 8 + f]);
          for (std::int64_t c = 0; c < 2; ++c) {
            const std::int64_t f = c * 4 + pix;
            auto up = path, down = path;
            up[f] += 1e-6;
            down[f] -= 1e-6;
            const double g = (prob(up, y(n)) - prob(down, y(n))) / 2e-6;
            expected += std::abs(g * (x.data()[n * 8 + f] - x.data()[r * 8 + f]));
          }
        }
        CHECK(map(n, pix / 2, pix % 2) == doctest::Approx(expected).epsilon(1e-6));
      }
    // The penalty weighs the map by the blobs (a blob drawn twice counts twice).
    const auto blobs = cdep_test::pixel_blobs({1, 1, 2}, 2, 2);
    double expected = 0;
    for (std::int64_t n = 0; n < 3; ++n) expected += 2 * map(n, 0, 1) + map(n, 1, 0);
    CHECK(expected_gradients_penalty(*net, x, y, blobs, draw).item() == doctest::Approx(expected).epsilon(1e-10));
  }

  TEST_CASE("learn.cdep: the EG loss passes gradcheck in the parameters for a fixed draw") {
    Generator gen(28);
    auto net = cdep_test::tanh_image_mlp(1, 3, 3, 4, 3, gen);
    const auto x = randn<double>(Shape{3, 1, 3, 3}, gen);
    const auto y = cdep_test::labels({1, 0, 2});
    Generator draw_gen(9);
    const auto draw = draw_eg_references(3, 2, draw_gen);
    const auto blobs = cdep_test::pixel_blobs({4, 8}, 3, 3);
    const auto f = [&](const V& p) {
      ParameterOverride<double> scope(*net, std::span<const Tensor<double>>(p));
      return expected_gradients_penalty(*net, x, y, blobs, draw);
    };
    const auto result = gradcheck(f, net->parameters());
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("learn.cdep: bad input is an error naming the function and the shapes") {
    Generator gen(29);
    auto net = cdep_test::tiny_lenet(gen);
    const auto x = randn<double>(Shape{2, 1, 6, 6}, gen);
    const auto y = cdep_test::labels({0, 1});
    METAGRAD_CHECK_ERROR(cdep_penalty(net, x, zeros<double>(Shape{1, 6, 6})), "cdep_penalty", "rank 5", "[1, 6, 6]");
    METAGRAD_CHECK_ERROR(cdep_penalty(net, x, zeros<double>(Shape{2, 1, 1, 5, 6})), "cdep_penalty", "broadcast",
                         "[2, 1, 6, 6]");
    METAGRAD_CHECK_ERROR(cdep_penalty(net, zeros<double>(Shape{0, 1, 6, 6}), cdep_test::pixel_blobs({0}, 6, 6)),
                         "cdep_penalty", "non-empty");
    METAGRAD_CHECK_ERROR(cdep_penalty(net, x, zeros<double>(Shape{0, 1, 1, 6, 6})), "cdep_penalty", "[0, 1, 1, 6, 6]");
    METAGRAD_CHECK_ERROR(gradient_sum_penalty(net, randn<double>(Shape{2, 3, 6, 6}, gen), y, zeros<double>(Shape{1, 1, 3, 6, 6})),
                         "gradient_sum_penalty", "spatial blobs", "[1, 1, 3, 6, 6]");
    METAGRAD_CHECK_ERROR(gradient_sum_penalty(net, x, cdep_test::labels({0}), cdep_test::pixel_blobs({0}, 6, 6)),
                         "gradient_sum_penalty", "labels");
    METAGRAD_CHECK_ERROR(expected_gradients_map(*net, x, y, EgDraw{{0, 1, 2}, {0.5, 0.5, 0.5}}), "expected_gradients_map",
                         "K references");
    METAGRAD_CHECK_ERROR(expected_gradients_map(*net, x, y, EgDraw{{0, 5}, {0.5, 0.5}}), "expected_gradients_map",
                         "reference 5");
    METAGRAD_CHECK_ERROR(BlobSampler({1, 2}, 2, 2, 8, 0), "BlobSampler", "one probability per pixel");
    METAGRAD_CHECK_ERROR(BlobSampler({1, -1, 0, 0}, 2, 2, 8, 0), "BlobSampler", ">= 0");
    METAGRAD_CHECK_ERROR(BlobSampler({0, 0, 0, 0}, 2, 2, 8, 0), "BlobSampler", "sum to 0");
    METAGRAD_CHECK_ERROR(BlobSampler({1, 1, 1, 1}, 2, 2, 0, 0), "BlobSampler", "per_batch");
    METAGRAD_CHECK_ERROR(Cdep<double>({.lambda = -1}, blobs_from_batch<double>()), "Cdep", "lambda");
    METAGRAD_CHECK_ERROR(Cdep<double>({.lambda = 1}, {}), "Cdep", "blob source");
    METAGRAD_CHECK_ERROR(ExpectedGradients<double>({.references = 0}, blobs_from_batch<double>()), "ExpectedGradients",
                         "references");
    METAGRAD_CHECK_ERROR(blobs_from_batch<double>()(Batch<double>{x, y, {}, {}}), "blobs_from_batch", "needs a mask");
  }

  TEST_CASE("learn.cdep: CDEP's LeNet maps 28×28 images to class logits, and CD runs through it exactly") {
    Generator gen(8);
    auto net = cdep_lenet<double>(gen, {.in_channels = 3, .hidden = 7, .classes = 4});
    std::int64_t count = 0;
    for (const auto& p : net->parameters()) count += p.numel();
    CHECK(count == (3 * 25 * 20 + 20) + (20 * 25 * 50 + 50) + (800 * 7 + 7) + (7 * 4 + 4));
    const auto x = randn<double>(Shape{2, 3, 28, 28}, gen);
    const auto logits = net->forward(x);
    REQUIRE(logits.shape() == Shape{2, 4});
    auto mask = zeros<double>(Shape{1, 1, 28, 28});
    mask.fresh_data()[14 * 28 + 14] = 1;
    const auto parts = contextual_decomposition(*net, x, mask);
    CHECK(metagrad::testing::allclose(add(parts.rel, parts.irrel), logits, 1e-10, 1e-10));
    METAGRAD_CHECK_ERROR(cdep_lenet<double>(gen, {.hidden = 0}), "cdep_lenet", "hidden > 0");
  }
}
