// SPDX-License-Identifier: MIT
// learn/masked_lm: masking chooses about mask_prob of the real tokens and never padding, records
// the originals, and corrupts the chosen ones as BERT does (mostly mask_id); the loss is the
// cross-entropy of the tied-embedding logits at the chosen places (checked against a hand
// computation); pretraining lowers it on a corpus with structure to learn; bad input is refused.
#include <cmath>

#include "metagrad/learn/masked_lm.hpp"
#include "test_util.hpp"

namespace masked_lm_test {

using namespace metagrad;

// Documents "a b c d a b c d ..." (ids 2..5) of varying length, padded to 12.
data::TextDataset<float> cyclic_corpus(std::int64_t n) {
  auto ids = IndexTensor::empty(Shape{n, 12});
  auto mask = Tensor<float>::empty(Shape{n, 12});
  auto labels = IndexTensor::empty(Shape{n});
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t len = 6 + i % 7, start = i % 4;
    for (std::int64_t t = 0; t < 12; ++t) {
      ids.fresh_data()[i * 12 + t] = t < len ? 2 + (start + t) % 4 : data::Vocabulary::kPad;
      mask.fresh_data()[i * 12 + t] = t < len ? 1.f : 0.f;
    }
    labels.fresh_data()[i] = 0;
  }
  return {ids, mask, labels};
}

nn::TransformerEncoder<float> tiny_model(Generator& gen) {
  return nn::TransformerEncoder<float>(
      {.vocab_size = 6, .max_len = 12, .d_model = 16, .num_heads = 2, .d_ff = 32, .num_layers = 1, .pre_norm = true},
      gen);
}

}  // namespace masked_lm_test

TEST_CASE("masked_lm: masking picks real tokens only, about mask_prob of them, BERT's corruption") {
  using namespace masked_lm_test;
  const auto d = cyclic_corpus(400);
  Generator gen(3);
  learn::MaskedLmOptions o;
  const auto m = learn::mask_tokens(d.ids, d.mask, 6, o, gen);
  std::int64_t real = 0;
  for (std::int64_t i = 0; i < d.mask.numel(); ++i) real += d.mask.data()[i] != 0;
  const double share = static_cast<double>(m.positions.numel()) / static_cast<double>(real);
  CHECK(share == doctest::Approx(0.15).epsilon(0.15));  // ~3,600 real tokens: 0.15 ± a few sd
  std::int64_t masked = 0, kept = 0;
  for (std::int64_t k = 0; k < m.positions.numel(); ++k) {
    const std::int64_t p = m.positions.data()[k];
    CHECK(d.mask.data()[p] != 0);
    CHECK(m.targets.data()[k] == d.ids.data()[p]);
    masked += m.inputs.data()[p] == o.mask_id;
    kept += m.inputs.data()[p] == d.ids.data()[p];
  }
  const double n = static_cast<double>(m.positions.numel());
  CHECK(masked / n == doctest::Approx(0.8).epsilon(0.1));
  CHECK(kept / n > 0.05);  // 10 % kept, plus random replacements that hit the original
  // Unchosen tokens and padding are untouched.
  std::int64_t changed = 0;
  for (std::int64_t i = 0; i < d.ids.numel(); ++i) changed += m.inputs.data()[i] != d.ids.data()[i];
  CHECK(changed <= m.positions.numel());
}

TEST_CASE("masked_lm: the loss is the tied-embedding cross-entropy at the chosen places") {
  using namespace masked_lm_test;
  Generator gen(5);
  auto model = tiny_model(gen);
  const auto d = cyclic_corpus(3);
  learn::MaskedLmOptions o{.mask_prob = 0.5};
  const auto m = learn::mask_tokens(d.ids, d.mask, 6, o, gen);
  const double loss = learn::masked_lm_loss(model, m, d.mask).item();
  // By hand: softmax over h_p · E_v for each chosen p.
  const auto hidden = model.forward(m.inputs, d.mask).hidden;
  const auto& e = model.tok->weight;
  double expected = 0;
  for (std::int64_t k = 0; k < m.positions.numel(); ++k) {
    const std::int64_t p = m.positions.data()[k];
    std::vector<double> logit(6, 0.0);
    double mx = -1e300;
    for (std::int64_t v = 0; v < 6; ++v) {
      for (std::int64_t j = 0; j < 16; ++j) logit[v] += double(hidden.data()[p * 16 + j]) * double(e.data()[v * 16 + j]);
      mx = std::max(mx, logit[v]);
    }
    double z = 0;
    for (double l : logit) z += std::exp(l - mx);
    expected += -(logit[m.targets.data()[k]] - mx - std::log(z));
  }
  expected /= static_cast<double>(m.positions.numel());
  CHECK(loss == doctest::Approx(expected).epsilon(1e-5));
}

TEST_CASE("masked_lm: pretraining learns the corpus' structure; the head is left alone") {
  using namespace masked_lm_test;
  Generator gen(7);
  auto model = tiny_model(gen);
  const auto head_before = clone(model.head->weight.detach());
  const auto d = cyclic_corpus(256);
  const auto losses = learn::pretrain_masked_lm(model, d, {.epochs = 8, .lr = 3e-3, .seed = 1});
  REQUIRE(losses.size() == 8);
  // ln 6 = 1.79 is a uniform guess; a cyclic corpus is nearly predictable from its neighbours.
  CHECK(losses.front() > 1.0);
  CHECK(losses.back() < 0.5 * losses.front());
  for (std::int64_t i = 0; i < head_before.numel(); ++i) CHECK(model.head->weight.data()[i] == head_before.data()[i]);
}

TEST_CASE("masked_lm: bad input is refused naming the op") {
  using namespace masked_lm_test;
  const auto d = cyclic_corpus(2);
  Generator gen(1);
  METAGRAD_CHECK_ERROR(learn::mask_tokens(d.ids, d.mask, 6, {.mask_prob = 0.0}, gen), "mask_tokens", "mask_prob");
  METAGRAD_CHECK_ERROR(learn::mask_tokens(d.ids, d.mask, 6, {.mask_id = 6}, gen), "mask_tokens", "mask_id");
  const auto padding = zeros<float>(d.mask.shape());
  METAGRAD_CHECK_ERROR(learn::mask_tokens(d.ids, padding, 6, {}, gen), "mask_tokens", "all padding");
  METAGRAD_CHECK_ERROR(learn::mask_tokens(d.ids, zeros<float>(Shape{2, 3}), 6, {}, gen), "mask_tokens", "[B, S]");
}
