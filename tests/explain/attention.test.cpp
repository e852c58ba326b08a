// SPDX-License-Identifier: MIT
#include "metagrad/explain/attention.hpp"
#include "metagrad/explain/learned.hpp"
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/ops/unary.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using V = std::vector<Tensor<double>>;

TEST_SUITE("explain.attention") {
  TEST_CASE("explain.attention: head scores are masked means over query rows") {
    // One example, one head, S = 3, the last token padding: rows 0 and 1 count.
    const auto logits = reshape(tensor<double>({{1.0, 2.0, 3.0}, {3.0, 4.0, 5.0}, {100.0, 100.0, 100.0}}),
                                Shape{1, 1, 3, 3});
    const auto mask = tensor<double>({{1.0, 1.0, 0.0}});
    CHECK(allclose(head_scores(std::vector{logits}, mask), reshape(tensor<double>({2.0, 3.0, 4.0}), Shape{1, 1, 3}),
                   1e-12));
    // Two layers stack layer-major.
    CHECK(head_scores(std::vector{logits, logits * 2.0}, mask).shape() == Shape{1, 2, 3});
    // The explanation is a distribution with zero weight on padding.
    const auto e = AttentionExplainer{}(std::vector{logits}, mask);
    CHECK(e(0, 2) == 0.0);
    CHECK(e(0, 0) + e(0, 1) == doctest::Approx(1.0));
    CHECK(e(0, 1) / e(0, 0) == doctest::Approx(std::exp(1.0)));
  }

  TEST_CASE("explain.attention: on a Transformer; the learned explainer starts as the all-heads average") {
    Generator gen(41);
    nn::TransformerEncoder<double> model({.vocab_size = 11, .max_len = 6, .d_model = 8, .num_heads = 2, .d_ff = 16,
                                      .num_layers = 2, .num_classes = 2},
                                     gen);
    model.eval();
    const auto tokens = from_vector<std::int64_t>({1, 4, 2, 7, 0, 0, 3, 3, 9, 5, 6, 1}, Shape{2, 6});
    const auto mask = tensor<double>({{1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 1}});
    const auto out = model.forward(tokens, mask);
    const auto fixed = AttentionExplainer{}(out.attention_logits, mask);
    REQUIRE(fixed.shape() == Shape{2, 6});
    CHECK(allclose(sum(fixed, {1}), ones<double>(Shape{2}), 1e-12));
    CHECK((fixed(0, 4) == 0.0 && fixed(0, 5) == 0.0));
    LearnedAttentionExplainer<double> learned(2, 2);
    CHECK(allclose(learned.head_weights(), full<double>(Shape{4}, 0.25), 1e-12));
    CHECK(allclose(learned(out.attention_logits, mask), fixed, 1e-12));
    // The last layer alone differs from the average.
    CHECK_FALSE(allclose(AttentionExplainer{.last_layer_only = true}(model, tokens, mask), fixed, 1e-6));
    // A peaked φ switches heads off exactly.
    learned.head_logits = tensor<double>({2.0, 0.1, 0.0, 1.5});
    const auto w = learned.head_weights();
    CHECK(allclose(w, tensor<double>({0.75, 0.0, 0.0, 0.25}), 1e-12));
  }

  TEST_CASE("explain.attention: the SMaT KL loss passes gradcheck in φ and in the attention logits") {
    Generator gen(42);
    const auto teacher = softmax(randn<double>(Shape{2, 4}, gen), 1);
    const auto mask = tensor<double>({{1, 1, 1, 0}, {1, 1, 1, 1}});
    const auto phi0 = tensor<double>({0.3, 0.1, 0.25, 0.2, 0.05, 0.15});  // support of 4 heads, no ties
    auto loss = [&](const V& p) {
      LearnedAttentionExplainer<double> e(3, 2, 0.5);
      e.head_logits = p[0];
      const auto logits = std::vector{p[1], p[2], p[3]};
      const auto student = e(logits, mask);
      // KL(teacher ‖ student) over unpadded tokens; padded student entries are 0, the teacher's are masked.
      return sum(teacher * mask * (log(teacher) - log(student + (1.0 - mask))));
    };
    const auto result = gradcheck(loss, V{phi0, randn<double>(Shape{2, 2, 4, 4}, gen),
                                          randn<double>(Shape{2, 2, 4, 4}, gen), randn<double>(Shape{2, 2, 4, 4}, gen)});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("explain.attention: bad input") {
    METAGRAD_CHECK_ERROR(head_scores(std::vector{zeros<double>(Shape{1, 1, 2, 3})}), "head_scores", "[1, 1, 2, 3]");
    METAGRAD_CHECK_ERROR(attention_explanation(zeros<double>(Shape{1, 2, 3}), ones<double>(Shape{3})),
                         "attention_explanation", "[1, 2, 3]", "[3]");
    LearnedAttentionExplainer<double> e(1, 2);
    METAGRAD_CHECK_ERROR(e(std::vector{zeros<double>(Shape{1, 3, 2, 2})}), "LearnedAttentionExplainer", "2 heads");
  }
}
