// SPDX-License-Identifier: MIT
#include "metagrad/explain/cd.hpp"
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/ops/softmax.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using V = std::vector<Tensor<double>>;

namespace {
/// A CNN with every layer CD supports.
std::shared_ptr<nn::Sequential<double>> cd_cnn(Generator& gen) {
  auto net = std::make_shared<nn::Sequential<double>>();
  net->emplace_back<nn::Conv2d<double>>(2, 4, Size2d{3}, gen, nn::Conv2dOptions{.padding = 1});
  net->emplace_back<nn::ReLU<double>>();
  net->emplace_back<nn::MaxPool2d<double>>(Size2d{2});
  net->emplace_back<nn::BatchNorm2d<double>>(4);
  net->emplace_back<nn::AvgPool2d<double>>(Size2d{2}, std::nullopt, Size2d{0}, true);
  net->emplace_back<nn::Flatten<double>>();
  net->emplace_back<nn::Linear<double>>(16, 6, gen);
  net->emplace_back<nn::Dropout<double>>(0.5, gen);
  net->emplace_back<nn::Tanh<double>>();
  net->emplace_back<nn::Linear<double>>(6, 5, gen);
  net->emplace_back<nn::Sigmoid<double>>();
  net->emplace_back<nn::Linear<double>>(5, 3, gen);
  return net;
}
}  // namespace

TEST_SUITE("explain.cd") {
  TEST_CASE("explain.cd: rel + irrel equals the forward pass at every layer") {
    Generator gen(11);
    auto net = cd_cnn(gen);
    auto& bn = dynamic_cast<nn::BatchNorm2d<double>&>((*net)[3]);
    bn.running_mean = randn<double>(Shape{4}, gen) * 0.1;
    bn.running_var = rand<double>(Shape{4}, gen, 0.5, 2.0);
    bn.weight = randn<double>(Shape{4}, gen);  // negative scales too
    net->eval();
    const auto x = randn<double>(Shape{3, 2, 8, 8}, gen);
    const auto mask = bernoulli<double>(Shape{1, 1, 8, 8}, 0.4, gen);
    std::vector<Decomposition<double>> trace;
    const auto d = contextual_decomposition(*net, x, mask, &trace);
    REQUIRE(trace.size() == net->size());
    Tensor<double> h = x;
    for (std::size_t i = 0; i < net->size(); ++i) {
      h = (*net)[i].forward(h);
      INFO("layer ", i);
      CHECK(allclose(trace[i].total(), h, 1e-10, 1e-10));
    }
    CHECK(allclose(d.total(), net->forward(x), 1e-10, 1e-10));
    // The same in float, within float tolerance.
    Generator genf(11);
    nn::Sequential<float> netf;
    netf.emplace_back<nn::Conv2d<float>>(2, 4, Size2d{3}, genf);
    netf.emplace_back<nn::ReLU<float>>();
    netf.emplace_back<nn::MaxPool2d<float>>(Size2d{2});
    netf.emplace_back<nn::Flatten<float>>();
    netf.emplace_back<nn::Linear<float>>(144, 3, genf);
    const auto xf = randn<float>(Shape{2, 2, 14, 14}, genf);
    const auto df = contextual_decomposition(netf, xf, bernoulli<float>(Shape{1, 1, 14, 14}, 0.5, genf));
    CHECK(allclose(df.total(), netf.forward(xf), 1e-5, 1e-5));
  }

  TEST_CASE("explain.cd: an all-ones mask leaves nothing irrelevant; an all-zeros mask nothing relevant") {
    Generator gen(12);
    auto net = cd_cnn(gen);
    net->eval();
    const auto x = randn<double>(Shape{2, 2, 8, 8}, gen);
    const auto all = contextual_decomposition(*net, x, ones<double>(Shape{1}));
    CHECK(allclose(all.irrel, zeros<double>(all.irrel.shape()), 1e-12, 0));
    CHECK(allclose(all.rel, net->forward(x), 1e-10, 1e-10));
    const auto none = contextual_decomposition(*net, x, zeros<double>(Shape{1}));
    CHECK(allclose(none.rel, zeros<double>(none.rel.shape()), 1e-12, 0));
  }

  TEST_CASE("explain.cd: matches a hand computation on a 2-layer net") {
    // h = ReLU(W1 x + b1), y = W2 h + b2 with x = [1, 2], mask = [1, 0].
    Generator gen(13);
    nn::Sequential<double> net;
    auto l1 = net.emplace_back<nn::Linear<double>>(2, 2, gen);
    net.emplace_back<nn::ReLU<double>>();
    auto l2 = net.emplace_back<nn::Linear<double>>(2, 1, gen);
    l1->weight = tensor<double>({{1.0, -1.0}, {2.0, 1.0}});
    l1->bias = tensor<double>({0.5, -1.0});
    l2->weight = tensor<double>({{1.0, -2.0}});
    l2->bias = tensor<double>({3.0});
    const auto d = contextual_decomposition(net, tensor<double>({{1.0, 2.0}}), tensor<double>({1.0, 0.0}));
    // Layer 1: r = W1·[1,0] = [1, 2], i = W1·[0,2] = [-2, 2].
    //   unit 0: b = 0.5 split 1:2 -> rel 1 + 1/6, irrel -2 + 1/3; unit 1: b = -1 split 2:2 -> 1.5, 1.5.
    // ReLU: rel = [7/6, 1.5]; total = [-1/2, 3] -> relu [0, 3]; irrel = [0 - 7/6, 3 - 1.5] = [-7/6, 1.5].
    // Layer 2: r = 7/6 - 3 = -11/6, i = -7/6 - 3 = -25/6; b = 3 split 11:25 ->
    //   rel = -11/6 + 3·11/36 = -11/12, irrel = -25/6 + 3·25/36 = -25/12.
    CHECK(d.rel(0, 0) == doctest::Approx(-11.0 / 12).epsilon(1e-12));
    CHECK(d.irrel(0, 0) == doctest::Approx(-25.0 / 12).epsilon(1e-12));
    CHECK(d.total()(0, 0) == doctest::Approx(-3.0).epsilon(1e-12));  // 0·1 + 3·(−2) + 3
  }

  TEST_CASE("explain.cd: the CDEP penalty passes gradcheck in the parameters") {
    Generator gen(14);
    nn::Sequential<double> net;
    net.emplace_back<nn::Linear<double>>(6, 5, gen);
    net.emplace_back<nn::ReLU<double>>();
    net.emplace_back<nn::Linear<double>>(5, 4, gen);
    net.emplace_back<nn::Tanh<double>>();
    net.emplace_back<nn::Linear<double>>(4, 3, gen);
    const auto x = randn<double>(Shape{3, 6}, gen);
    const auto blob = from_vector<double>({1, 1, 0, 0, 0, 1}, Shape{1, 6});
    // mean over examples and classes of softmax([rel, irrel])₀, the share CD gives the blob.
    auto penalty = [&](const V& p) {
      ParameterOverride<double> scope(net, std::span<const Tensor<double>>(p));
      const auto d = contextual_decomposition(net, x, blob);
      return mean(select(softmax(stack(V{d.rel, d.irrel}, 0), 0), 0, 0));
    };
    const auto result = gradcheck(penalty, net.parameters());
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("explain.cd: tile explainer paints each tile's score; tiles add up for a bias-free linear model") {
    Generator gen(15);
    nn::Sequential<double> net;
    net.emplace_back<nn::Flatten<double>>();
    net.emplace_back<nn::Linear<double>>(2 * 6 * 5, 4, gen);
    const auto x = randn<double>(Shape{2, 2, 6, 5}, gen);
    const auto target = from_vector<std::int64_t>({3, 1}, Shape{2});
    auto* lin = dynamic_cast<nn::Linear<double>*>(&net[1]);
    lin->bias = zeros<double>(Shape{4});
    // Without a bias a tile's rel is the logit's part from its pixels, so the tiles add up to the
    // logit (each pixel holds its tile's score: divide by the tile's area).
    const auto map0 = ContextualDecomposition{.tile = 2}(net, x, target);
    REQUIRE(map0.shape() == x.shape());
    const auto logits0 = net.forward(x);
    for (std::int64_t n = 0; n < 2; ++n) {
      double total = 0;
      for (std::int64_t r = 0; r < 6; ++r)
        for (std::int64_t c = 0; c < 5; ++c) total += map0(n, 0, r, c) / (2.0 * (c == 4 ? 1.0 : 2.0));
      CHECK(total == doctest::Approx(logits0(n, target(n))).epsilon(1e-10));
    }
    CHECK(allclose(ContextualDecomposition{.tile = 2, .max_batch = 1}(net, x, target), map0, 1e-12, 1e-12));
  }

  TEST_CASE("explain.cd: an unsupported layer is named in the error") {
    Generator gen(16);
    nn::Sequential<double> net;
    net.emplace_back<nn::Linear<double>>(3, 3, gen);
    net.emplace_back<nn::LeakyReLU<double>>();
    METAGRAD_CHECK_ERROR(contextual_decomposition(net, randn<double>(Shape{2, 3}, gen), ones<double>(Shape{3})),
                         "contextual_decomposition", "LeakyReLU");
    METAGRAD_CHECK_ERROR(contextual_decomposition(net, randn<double>(Shape{2, 3}, gen), ones<double>(Shape{4})),
                         "contextual_decomposition", "[4]");
  }
}
