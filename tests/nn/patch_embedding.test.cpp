// SPDX-License-Identifier: MIT
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/nn/functional_call.hpp"
#include "metagrad/nn/patch_embedding.hpp"
#include "metagrad/ops/unary.hpp"
#include "layer_check.hpp"
#include "test_util.hpp"

namespace patch_embedding_test {
using namespace metagrad;

nn::VisionTransformerConfig tiny_vit() {
  nn::VisionTransformerConfig c;
  c.image_size = 4;
  c.channels = 2;
  c.patch = 2;
  c.encoder.d_model = 4;
  c.encoder.num_heads = 2;
  c.encoder.d_ff = 5;
  c.encoder.num_layers = 2;
  c.encoder.num_classes = 3;
  c.encoder.pre_norm = true;
  return c;
}
}  // namespace patch_embedding_test

TEST_SUITE("nn.patch_embedding") {
  TEST_CASE("nn.patchify: row-major patches, each in (channel, row, column) order") {
    using namespace metagrad;
    // A [1, 2, 4, 6] image whose value names its place: 100·c + 10·y + x.
    auto img = Tensor<double>::empty(Shape{1, 2, 4, 6});
    for (std::int64_t c = 0; c < 2; ++c)
      for (std::int64_t y = 0; y < 4; ++y)
        for (std::int64_t x = 0; x < 6; ++x) img.mutable_data()[(c * 4 + y) * 6 + x] = static_cast<double>(100 * c + 10 * y + x);
    const auto p = nn::patchify(img, 2);
    REQUIRE(p.shape() == Shape{1, 6, 8});
    // Patch 4 is grid row 1, column 1: pixels y 2..3, x 2..3.
    const std::vector<double> want{22, 23, 32, 33, 122, 123, 132, 133};
    for (std::int64_t k = 0; k < 8; ++k) CHECK(p(0, 4, k) == want[static_cast<std::size_t>(k)]);
  }

  TEST_CASE("nn.PatchEmbedding: shapes, the Linear of each flattened patch, and second-order gradients") {
    using namespace metagrad;
    Generator gen(1);
    nn::PatchEmbedding<double> embed(2, 3, 5, gen);
    CHECK(embed.proj.weight.shape() == Shape{5, 18});
    const auto x = randn<double>(Shape{3, 2, 6, 9}, gen);
    const auto y = embed(x);
    REQUIRE(y.shape() == Shape{3, 6, 5});
    CHECK(testing::allclose(y, embed.proj(nn::patchify(x, 3)), 0, 0));
    // An odd shape: 2 channels, a 6×3 image, 2 patches of 3×3.
    testing::check_layer_gradients(embed, randn<double>(Shape{2, 2, 6, 3}, gen));
  }

  TEST_CASE("nn.VisionTransformer: shapes, CLS first, and second-order gradcheck w.r.t. images and parameters") {
    using namespace metagrad;
    Generator gen(2);
    nn::VisionTransformer<double> vit(patch_embedding_test::tiny_vit(), gen);
    CHECK(vit.num_patches() == 4);
    const auto names = vit.named_parameters();
    CHECK(names.contains("cls"));
    CHECK(names.contains("patch.proj.weight"));
    CHECK(names.contains("encoder.pos.weight"));
    const auto images = rand<double>(Shape{2, 2, 4, 4}, gen, -1, 1);
    const auto out = vit.forward(images);
    CHECK(out.logits.shape() == Shape{2, 3});
    CHECK(out.attention_logits.size() == 2);
    CHECK(out.attention_logits[0].shape() == Shape{2, 2, 5, 5});
    // forward() is forward_patches() of the patch embeddings, pooled at the CLS position.
    CHECK(testing::allclose(out.logits, vit.forward_patches(vit.patch(images)).logits, 0, 0));
    CHECK(testing::allclose(out.pooled, select(out.hidden, 1, 0), 0, 0));
    std::vector<Tensor<double>> inputs{images};
    for (const auto& p : vit.parameters()) inputs.push_back(p.detach());
    const auto result = gradcheck(
        TensorFn([&](const std::vector<Tensor<double>>& a) {
          const std::vector<Tensor<double>> params(a.begin() + 1, a.end());
          return functional_call(vit, params, [&] {
            auto o = vit.forward(a[0]);
            return std::vector<Tensor<double>>{o.logits, o.attention_logits[1]};
          });
        }),
        inputs, {.order = 2});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("nn.PatchEmbedding / VisionTransformer: bad sizes and inputs name the op and the shapes") {
    using namespace metagrad;
    Generator gen(3);
    METAGRAD_CHECK_ERROR(nn::PatchEmbedding<double>(1, 0, 4, gen), "PatchEmbedding", "positive");
    METAGRAD_CHECK_ERROR(nn::patchify(zeros<double>(Shape{1, 1, 5, 4}), 2), "patchify", "[1, 1, 5, 4]", "2");
    METAGRAD_CHECK_ERROR(nn::patchify(zeros<double>(Shape{4, 4}), 2), "patchify", "[4, 4]");
    nn::PatchEmbedding<double> embed(2, 2, 4, gen);
    METAGRAD_CHECK_ERROR(embed(zeros<double>(Shape{1, 3, 4, 4})), "PatchEmbedding", "[1, 3, 4, 4]", "[B, 2, H, W]");
    auto bad = patch_embedding_test::tiny_vit();
    bad.patch = 3;
    METAGRAD_CHECK_ERROR(nn::VisionTransformer<double>(bad, gen), "VisionTransformer", "image size 4", "patch size 3");
    nn::VisionTransformer<double> vit(patch_embedding_test::tiny_vit(), gen);
    METAGRAD_CHECK_ERROR(vit.forward(zeros<double>(Shape{1, 2, 6, 6})), "VisionTransformer", "[1, 2, 6, 6]");
    METAGRAD_CHECK_ERROR(vit.forward_patches(zeros<double>(Shape{1, 3, 4})), "VisionTransformer", "[1, 3, 4]",
                         "[B, 4, 4]");
  }
}
