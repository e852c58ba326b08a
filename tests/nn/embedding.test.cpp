// SPDX-License-Identifier: MIT
#include "metagrad/autograd/engine.hpp"
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/nn/embedding.hpp"
#include "metagrad/nn/functional_call.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

TEST_SUITE("nn.embedding") {
  TEST_CASE("nn.Embedding: rows at the ids, in the ids' shape plus the embedding dim") {
    Generator gen(1);
    nn::Embedding<float> emb(5, 3, gen);
    const auto ids = from_vector<std::int64_t>({4, 0, 4, 2, 1, 3}, Shape{2, 3});
    const auto e = emb(ids);
    CHECK(e.shape() == Shape{2, 3, 3});
    for (int b = 0; b < 2; ++b)
      for (int s = 0; s < 3; ++s)
        for (int d = 0; d < 3; ++d) CHECK(e(b, s, d) == emb.weight(ids(b, s), d));
  }

  TEST_CASE("nn.Embedding: repeated ids accumulate their gradients (hand-computed)") {
    Generator gen(1);
    nn::Embedding<double> emb(3, 2, gen);
    const auto ids = from_vector<std::int64_t>({0, 2, 0});
    const auto c = tensor<double>({{1, 2}, {3, 4}, {5, 6}});
    const auto g = grad(sum(emb(ids) * c), emb.weight);
    CHECK(allclose(g, tensor<double>({{6, 8}, {0, 0}, {3, 4}}), 0, 0));
  }

  TEST_CASE("nn.Embedding: second-order gradcheck w.r.t. the table through functional_call") {
    Generator gen(2);
    nn::Embedding<double> emb(4, 3, gen);
    const auto ids = from_vector<std::int64_t>({1, 3, 1, 0}, Shape{2, 2});
    // Squared so the second derivative is not zero.
    const auto result = gradgradcheck(
        [&](const std::vector<Tensor<double>>& a) {
          return functional_call(emb, a, [&] { return square(emb(ids)); });
        },
        {emb.weight.detach()});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("nn.Embedding: an id out of range is an error naming it") {
    Generator gen(1);
    nn::Embedding<float> emb(5, 3, gen);
    METAGRAD_CHECK_ERROR(emb(from_vector<std::int64_t>({1, 5})), "index_select", "index 5", "[5, 3]");
  }
}

TEST_SUITE("nn.embedding") {
  TEST_CASE("nn.Embedding: without a Generator it is a float table drawn from the default generator") {
    manual_seed(4);
    nn::Embedding emb(10, 3);
    static_assert(std::is_same_v<decltype(emb), nn::Embedding<float>>);
    Generator gen(4);
    nn::Embedding<float> emb_g(10, 3, gen);
    CHECK(metagrad::testing::same(emb.weight, emb_g.weight));
  }
}
