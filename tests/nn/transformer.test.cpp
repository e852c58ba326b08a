// SPDX-License-Identifier: MIT
#include <cmath>

#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/nn/functional_call.hpp"
#include "metagrad/nn/transformer.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

namespace {
nn::TransformerConfig tiny(bool pre_norm = false) {
  nn::TransformerConfig c;
  c.vocab_size = 11;
  c.max_len = 6;
  c.d_model = 8;
  c.num_heads = 2;
  c.d_ff = 12;
  c.num_layers = 2;
  c.num_classes = 3;
  c.pre_norm = pre_norm;
  return c;
}
bool same(const Tensor<double>& a, const Tensor<double>& b) { return a.to_vector() == b.to_vector(); }
}  // namespace

TEST_SUITE("nn.transformer") {
  TEST_CASE("nn.TransformerEncoder: output shapes and parameter names") {
    Generator gen(1);
    nn::TransformerEncoder<float> model(tiny(), gen);
    const auto tokens = from_vector<std::int64_t>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, Shape{2, 5});
    const auto out = model.forward(tokens);
    CHECK(out.logits.shape() == Shape{2, 3});
    CHECK(out.pooled.shape() == Shape{2, 8});
    CHECK(out.hidden.shape() == Shape{2, 5, 8});
    REQUIRE(out.attention_logits.size() == 2);
    for (const auto& a : out.attention_logits) CHECK(a.shape() == Shape{2, 2, 5, 5});
    const auto names = model.named_parameters().names();
    CHECK(names.front() == "tok.weight");
    CHECK(names[1] == "pos.weight");
    CHECK(names[2] == "layers.0.attn.q.weight");
    CHECK(names.back() == "head.bias");
    CHECK(model.named_parameters().contains("layers.1.ff2.bias"));
    CHECK(model.named_parameters().contains("layers.1.ln2.weight"));
    CHECK_FALSE(model.named_parameters().contains("norm.weight"));
    Generator g2(1);
    nn::TransformerEncoder<float> pre(tiny(true), g2);
    CHECK(pre.named_parameters().contains("norm.weight"));
    CHECK(pre.forward(tokens).logits.shape() == Shape{2, 3});
  }

  TEST_CASE("nn.TransformerEncoder: layer-0 attention logits are q·kᵀ/√d_head of the embeddings, per head") {
    Generator gen(2);
    nn::TransformerConfig c = tiny();
    c.d_model = 4;
    nn::TransformerEncoder<double> model(c, gen);
    const std::vector<std::int64_t> ids{3, 0, 7};
    const auto logits = model.forward(from_vector<std::int64_t>(ids, Shape{1, 3})).attention_logits[0];
    const auto& attn = model.layers[0].attn;
    auto x = [&](std::int64_t s, std::int64_t i) { return model.tok->weight(ids[s], i) + model.pos->weight(s, i); };
    auto project = [&](const nn::Linear<double>& p, std::int64_t s, std::int64_t j) {
      double acc = p.bias(j);
      for (std::int64_t i = 0; i < 4; ++i) acc += p.weight(j, i) * x(s, i);
      return acc;
    };
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t s = 0; s < 3; ++s)
        for (std::int64_t t = 0; t < 3; ++t) {
          double dot = 0;
          for (std::int64_t j = 2 * h; j < 2 * h + 2; ++j) dot += project(attn.q, s, j) * project(attn.k, t, j);
          CHECK(logits(0, h, s, t) == doctest::Approx(dot / std::sqrt(2.0)).epsilon(1e-13));
        }
  }

  TEST_CASE("nn.TransformerEncoder: the padding mask masks (changing a padded token changes nothing)") {
    for (bool pre_norm : {false, true}) {
      INFO("pre_norm ", pre_norm);
      Generator gen(3);
      nn::TransformerEncoder<double> model(tiny(pre_norm), gen);
      const auto mask = tensor<double>({{1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}});
      const auto a = from_vector<std::int64_t>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, Shape{2, 5});
      const auto b = from_vector<std::int64_t>({1, 2, 3, 9, 0, 6, 7, 8, 9, 10}, Shape{2, 5});
      const auto oa = model.forward(a, mask), ob = model.forward(b, mask);
      CHECK(same(oa.logits, ob.logits));
      CHECK(same(oa.pooled, ob.pooled));
      CHECK(same(narrow(oa.hidden, 1, 0, 3), narrow(ob.hidden, 1, 0, 3)));
      CHECK(same(select(oa.hidden, 0, 1), select(ob.hidden, 0, 1)));
      // Logits between unpadded tokens do not see the padding either (in every layer).
      for (std::size_t l = 0; l < 2; ++l)
        CHECK(same(narrow(narrow(oa.attention_logits[l], 2, 0, 3), 3, 0, 3),
                   narrow(narrow(ob.attention_logits[l], 2, 0, 3), 3, 0, 3)));
      // The mask is what does it: without it the same change reaches the output.
      CHECK_FALSE(same(model.forward(a).logits, model.forward(b).logits));
      // An IndexTensor mask is the same mask.
      const auto index_mask = from_vector<std::int64_t>({1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, Shape{2, 5});
      CHECK(same(model.forward(a, index_mask).logits, oa.logits));
    }
  }

  TEST_CASE("nn.TransformerEncoder: second-order gradcheck w.r.t. input embeddings and all parameters") {
    for (bool pre_norm : {false, true}) {
      INFO("pre_norm ", pre_norm);
      Generator gen(4);
      nn::TransformerConfig c;
      c.max_len = 3;
      c.d_model = 4;
      c.num_heads = 2;
      c.d_ff = 5;
      c.num_layers = 2;
      c.num_classes = 2;
      c.pre_norm = pre_norm;
      c.pooling = pre_norm ? nn::Pooling::first : nn::Pooling::mean;
      nn::TransformerEncoder<double> model(c, gen);
      const auto mask = tensor<double>({{1, 1, 0}, {1, 1, 1}});
      std::vector<Tensor<double>> inputs{rand<double>(Shape{2, 3, 4}, gen, -1, 1)};
      for (const auto& p : model.parameters()) inputs.push_back(p.detach());
      const auto result = gradcheck(
          TensorFn([&](const std::vector<Tensor<double>>& a) {
            const std::vector<Tensor<double>> params(a.begin() + 1, a.end());
            return functional_call(model, params, [&] {
              auto out = model.forward_embeddings(a[0], mask);
              return std::vector<Tensor<double>>{out.logits, out.attention_logits[1]};
            });
          }),
          inputs, {.order = 2});
      CHECK_MESSAGE(result.ok, result.report);
    }
  }

  TEST_CASE("nn.TransformerEncoder: dropout acts in training only; the same seed builds the same model") {
    Generator g1(5), g2(5);
    nn::TransformerConfig c = tiny();
    c.dropout = 0.2;
    nn::TransformerEncoder<double> a(c, g1), b(c, g2);
    for (const auto& [name, t] : a.state_dict()) CHECK_MESSAGE(same(t, b.state_dict().at(name)), name);
    const auto tokens = from_vector<std::int64_t>({1, 2, 3, 4, 5, 6}, Shape{2, 3});
    CHECK_FALSE(same(a.forward(tokens).logits, a.forward(tokens).logits));
    a.eval();
    CHECK(same(a.forward(tokens).logits, a.forward(tokens).logits));
    c.dropout = 0;
    Generator g3(5);
    nn::TransformerEncoder<double> plain(c, g3);
    plain.load_state_dict(a.state_dict());
    CHECK(allclose(a.forward(tokens).logits, plain.forward(tokens).logits, 0, 0));
  }

  TEST_CASE("nn.TransformerEncoder: bad configurations and inputs are errors naming the shapes") {
    Generator gen(6);
    nn::TransformerConfig c = tiny();
    c.num_heads = 3;
    METAGRAD_CHECK_ERROR(nn::TransformerEncoder<float>(c, gen), "MultiheadSelfAttention", "d_model 8", "3 heads");
    nn::TransformerEncoder<float> model(tiny(), gen);
    const auto long_tokens = zeros<float>(Shape{1, 7, 8});
    METAGRAD_CHECK_ERROR(model.forward_embeddings(long_tokens), "TransformerEncoder", "[1, 7, 8]", "max_len = 6");
    const auto tokens = from_vector<std::int64_t>({1, 2, 3, 4}, Shape{2, 2});
    METAGRAD_CHECK_ERROR(model.forward(tokens, ones<float>(Shape{2, 3})), "TransformerEncoder", "[2, 3]", "[2, 2, 8]");
    METAGRAD_CHECK_ERROR(model.forward(tokens, tensor<float>({{1, 1}, {0, 0}})), "TransformerEncoder", "sequence 1",
                         "all padding");
    METAGRAD_CHECK_ERROR(model.forward(from_vector<std::int64_t>({1, 2, 3})), "TransformerEncoder", "[3]");
    nn::TransformerConfig no_vocab = tiny();
    no_vocab.vocab_size = 0;
    nn::TransformerEncoder<float> patches(no_vocab, gen);
    METAGRAD_CHECK_ERROR(patches.forward(tokens), "TransformerEncoder", "forward_embeddings");
  }
}

TEST_SUITE("nn.transformer") {
  TEST_CASE("nn.TransformerEncoder: without a Generator it is a float model drawn from the default generator") {
    manual_seed(12);
    nn::TransformerEncoder model(tiny());
    static_assert(std::is_same_v<decltype(model), nn::TransformerEncoder<float>>);
    Generator gen(12);
    nn::TransformerEncoder<float> model_g(tiny(), gen);
    const auto a = model.named_parameters(), b = model_g.named_parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].first == b[i].first);
      CHECK(metagrad::testing::same(a[i].second, b[i].second));
    }
    manual_seed(2);
    nn::MultiheadSelfAttention attn(8, 2);
    nn::TransformerEncoderLayer layer(8, 2, 16);
    Generator gen2(2);
    nn::MultiheadSelfAttention<float> attn_g(8, 2, gen2);
    nn::TransformerEncoderLayer<float> layer_g(8, 2, 16, gen2);
    CHECK(metagrad::testing::same(attn.q.weight, attn_g.q.weight));
    CHECK(metagrad::testing::same(layer.ff2.weight, layer_g.ff2.weight));
  }
}
