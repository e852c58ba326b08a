// SPDX-License-Identifier: MIT
#include <cmath>

#include "metagrad/explain/embedding_gradient.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

namespace explain_embedding_gradient_test {

nn::TransformerConfig small_config() {
  nn::TransformerConfig c;
  c.vocab_size = 11;
  c.max_len = 6;
  c.d_model = 8;
  c.num_heads = 2;
  c.d_ff = 12;
  c.num_layers = 2;
  c.num_classes = 3;
  return c;
}

/// Σ_n logits[n, target[n]] of the model run on the given embeddings.
double target_logits(nn::TransformerEncoder<double>& model, const Tensor<double>& emb, const Tensor<double>& mask,
                     const IndexTensor& target) {
  NoGradGuard no_grad;
  const auto logits = model.forward_embeddings(emb, mask).logits;
  double s = 0;
  for (std::int64_t n = 0; n < target.size(0); ++n) s += logits(n, target.data()[n]);
  return s;
}

}  // namespace explain_embedding_gradient_test

using namespace explain_embedding_gradient_test;

TEST_SUITE("explain.embedding_gradient") {
  TEST_CASE("explain.embedding_gradient: equals the two-call way and central differences") {
    Generator gen(3);
    nn::TransformerEncoder<double> model(small_config(), gen);
    const auto tokens = from_vector<std::int64_t>({1, 4, 2, 9, 3, 7, 5, 10, 0, 0}, Shape{2, 5});
    const auto mask = tensor<double>({{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}});
    const auto target = from_vector<std::int64_t>({2, 0}, Shape{2});
    const auto r = embedding_gradient(model, tokens, target, mask);
    CHECK(r.gradient.shape() == Shape{2, 5, 8});
    CHECK(r.embeddings.shape() == Shape{2, 5, 8});
    CHECK_FALSE(r.gradient.requires_grad());

    // The two calls it replaces: look the embeddings up, run forward_embeddings, differentiate.
    auto emb = model.tok->forward(tokens).detach().requires_grad_();
    const auto logits = model.forward_embeddings(emb, mask).logits;
    const auto score = sum(gather(logits, 1, reshape(target, Shape{2, 1})));
    CHECK(allclose(r.gradient, grad(score, emb), 1e-14, 1e-12));
    CHECK(allclose(r.embeddings, emb.detach(), 0, 0));
    CHECK(allclose(r.output.logits, logits, 1e-14, 1e-12));

    const double h = 1e-6;
    const auto base = emb.detach();
    for (std::int64_t i : {0, 13, 37, 50, 71}) {
      auto plus = clone(base), minus = clone(base);
      plus.mutable_data()[i] += h;
      minus.mutable_data()[i] -= h;
      const double fd = (target_logits(model, plus, mask, target) - target_logits(model, minus, mask, target)) / (2 * h);
      CHECK(r.gradient.data()[i] == doctest::Approx(fd).epsilon(1e-6).scale(1));
    }
    // Padded positions do not reach the logits.
    for (std::int64_t i = 40 + 8 * 3; i < 80; ++i) CHECK(r.gradient.data()[i] == 0.0);
    CHECK(r.gradient_times_input().shape() == Shape{2, 5});
  }

  TEST_CASE("explain.embedding_gradient: without a target it explains the predicted class") {
    Generator gen(5);
    nn::TransformerEncoder<double> model(small_config(), gen);
    const auto tokens = from_vector<std::int64_t>({1, 2, 3, 4, 5, 6}, Shape{2, 3});
    const auto r = embedding_gradient(model, tokens);
    const auto predicted = argmax(model.forward(tokens).logits.detach(), 1);
    CHECK(r.target.to_vector() == predicted.to_vector());
    CHECK(allclose(r.gradient, embedding_gradient(model, tokens, predicted).gradient, 0, 0));
  }

  TEST_CASE("explain.embedding_gradient: with create_graph it is differentiable in the parameters") {
    Generator gen(7);
    nn::TransformerEncoder<double> model(small_config(), gen);
    const auto tokens = from_vector<std::int64_t>({1, 4, 2, 9, 3, 7}, Shape{2, 3});
    const auto target = from_vector<std::int64_t>({1, 2}, Shape{2});
    const auto weights = randn<double>(Shape{2, 3, 8}, gen);
    // A loss on the explanation, as a right-for-the-right-reasons penalty would use it.
    auto loss = [&] {
      const auto r = embedding_gradient(model, tokens, target, {}, {.create_graph = true});
      return sum(mul(mul(r.gradient, r.gradient), weights));
    };
    const auto l = loss();
    REQUIRE(l.requires_grad());
    // The table enters twice (through the embeddings and nothing else); q.weight through attention.
    auto& table = model.tok->weight;
    auto& q = model.layers[0].attn.q.weight;
    const auto grads = grad(l, std::vector<Tensor<double>>{table, q});
    const double h = 1e-6;
    auto fd = [&](Tensor<double>& p, std::int64_t i) {
      NoGradGuard no_grad;
      const double v = p.data()[i];
      p.mutable_data()[i] = v + h;
      const double up = loss().item();
      p.mutable_data()[i] = v - h;
      const double down = loss().item();
      p.mutable_data()[i] = v;
      return (up - down) / (2 * h);
    };
    for (std::int64_t i : {8, 8 * 4 + 3, 8 * 9 + 7}) CHECK(grads[0].data()[i] == doctest::Approx(fd(table, i)).epsilon(1e-5));
    for (std::int64_t i : {0, 17, 63}) CHECK(grads[1].data()[i] == doctest::Approx(fd(q, i)).epsilon(1e-5));
  }

  TEST_CASE("explain.embedding_gradient: bad input is an error naming the call") {
    Generator gen(1);
    auto c = small_config();
    c.vocab_size = 0;
    nn::TransformerEncoder<double> patches(c, gen);
    const auto tokens = from_vector<std::int64_t>({1, 2, 3}, Shape{1, 3});
    METAGRAD_CHECK_ERROR(embedding_gradient(patches, tokens), "embedding_gradient", "vocab_size 0");
    nn::TransformerEncoder<double> model(small_config(), gen);
    METAGRAD_CHECK_ERROR(embedding_gradient(model, tokens, from_vector<std::int64_t>({0, 1}, Shape{2})),
                         "embedding_gradient", "[2]", "[1, 3]");
  }
}
