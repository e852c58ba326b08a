// SPDX-License-Identifier: MIT
// Patch embedding (the input layer of a Vision Transformer, Dosovitskiy et al. 2021): an image
// [B, C, H, W] is cut into non-overlapping p×p patches, read row-major (patch r·(W/p) + c is row r,
// column c), each flattened in (channel, row, column) order and mapped to d dimensions by one
// Linear. It is timm's PatchEmbed (a Conv2d with kernel = stride = p, then flatten and transpose)
// with the kernel [d, C, p, p] stored flattened as "proj.weight" [d, C·p·p].
//
// VisionTransformer puts a learned CLS token in front of the patch embeddings and runs the
// TransformerEncoder (learned positions for CLS + patches, first-token pooling; CLS and positions
// drawn from N(0, 0.02²) as in timm's ViT); forward_patches()
// starts from the patch embeddings, which gradient explainers differentiate with respect to.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "metagrad/nn/init.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/transformer.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad::nn {

/// images [B, C, H, W] -> patches [B, (H/p)·(W/p), C·p·p], row-major over the patch grid.
template <Floating T>
Tensor<T> patchify(const Tensor<T>& images, std::int64_t patch) {
  check(patch > 0, "patchify", "patch size must be positive, got ", patch);
  check(images.dim() == 4 && images.size(2) % patch == 0 && images.size(3) % patch == 0, "patchify", "images ",
        images.shape(), " are not [B, C, H, W] with H and W multiples of the patch size ", patch);
  const std::int64_t b = images.size(0), c = images.size(1), gh = images.size(2) / patch, gw = images.size(3) / patch;
  const auto grid = reshape(images, Shape{b, c, gh, patch, gw, patch});
  return reshape(permute(grid, {0, 2, 4, 1, 3, 5}), Shape{b, gh * gw, c * patch * patch});
}

template <Floating T = float>
class PatchEmbedding final : public Layer<T> {
 public:
  PatchEmbedding(std::int64_t in_channels, std::int64_t patch, std::int64_t dim, Generator& gen)
      : proj(checked(in_channels, patch, dim) * patch * patch, dim, gen), channels_(in_channels), patch_(patch) {
    this->register_module("proj", proj);
  }
  PatchEmbedding(std::int64_t in_channels, std::int64_t patch, std::int64_t dim)
      : PatchEmbedding(in_channels, patch, dim, default_generator()) {}

  /// images [B, C, H, W] -> [B, (H/p)·(W/p), d].
  Tensor<T> forward(const Tensor<T>& images) override {
    check(images.dim() == 4 && images.size(1) == channels_, "PatchEmbedding", "images ", images.shape(),
          " are not [B, ", channels_, ", H, W]");
    return proj(patchify(images, patch_));
  }

  std::int64_t patch_size() const { return patch_; }

  Linear<T> proj;

 private:
  static std::int64_t checked(std::int64_t c, std::int64_t p, std::int64_t d) {
    check(c > 0 && p > 0 && d > 0, "PatchEmbedding", "in_channels, patch and dim must be positive, got ", c, ", ", p,
          " and ", d);
    return c;
  }

  std::int64_t channels_, patch_;
};

struct VisionTransformerConfig {
  std::int64_t image_size = 28;  // square images
  std::int64_t channels = 1;
  std::int64_t patch = 7;
  TransformerConfig encoder{};   // vocab_size, max_len and pooling are set from the above
};

/// Parameter names: "patch.proj.weight", "patch.proj.bias", "cls" [1, 1, d], then the encoder's
/// ("encoder.pos.weight", "encoder.layers.<i>...", "encoder.head.weight").
template <Floating T = float>
class VisionTransformer final : public Module<T> {
  VisionTransformerConfig config_;  // first, so the members below can be built from it

 public:
  VisionTransformer(const VisionTransformerConfig& config, Generator& gen)
      : config_(checked(config)), patch(config.channels, config.patch, config.encoder.d_model, gen),
        encoder(encoder_config(config_), gen) {
    this->register_module("patch", patch);
    // As ViT (timm): CLS and positions start at N(0, 0.02²), so the patch content is not drowned
    // by N(0, 1) positions (the text Embedding's default) at the start.
    init::normal_(encoder.pos->weight, gen, 0.0, 0.02);
    cls = Tensor<T>::empty(Shape{1, 1, config_.encoder.d_model});
    init::normal_(cls, gen, 0.0, 0.02);
    this->register_parameter("cls", cls);
    this->register_module("encoder", encoder);
  }
  explicit VisionTransformer(const VisionTransformerConfig& config) : VisionTransformer(config, default_generator()) {}

  std::int64_t num_patches() const {
    const auto g = config_.image_size / config_.patch;
    return g * g;
  }

  /// images [B, C, H, W] -> the encoder's output over [CLS, patches] (S = 1 + patches).
  TransformerOutput<T> forward(const Tensor<T>& images) {
    check(images.dim() == 4 && images.size(2) == config_.image_size && images.size(3) == config_.image_size,
          "VisionTransformer", "images ", images.shape(), " are not [B, ", config_.channels, ", ",
          config_.image_size, ", ", config_.image_size, "]");
    return forward_patches(patch(images));
  }

  /// patch embeddings [B, P, d] -> the encoder's output over [CLS, patches].
  TransformerOutput<T> forward_patches(const Tensor<T>& patches) {
    const auto d = config_.encoder.d_model;
    check(patches.dim() == 3 && patches.size(1) == num_patches() && patches.size(2) == d, "VisionTransformer",
          "patch embeddings ", patches.shape(), " are not [B, ", num_patches(), ", ", d, "]");
    return encoder.forward_embeddings(concat(std::vector<Tensor<T>>{expand(cls, {patches.size(0), 1, d}), patches}, 1));
  }

  const VisionTransformerConfig& config() const { return config_; }

  PatchEmbedding<T> patch;
  Tensor<T> cls;  // [1, 1, d]
  TransformerEncoder<T> encoder;

 private:
  static const VisionTransformerConfig& checked(const VisionTransformerConfig& c) {
    check(c.image_size > 0 && c.patch > 0 && c.image_size % c.patch == 0, "VisionTransformer", "image size ",
          c.image_size, " is not a positive multiple of the patch size ", c.patch);
    return c;
  }
  static TransformerConfig encoder_config(const VisionTransformerConfig& c) {
    auto e = c.encoder;
    const auto g = c.image_size / c.patch;
    e.vocab_size = 0;
    e.max_len = 1 + g * g;
    e.pooling = Pooling::first;
    return e;
  }
};

}  // namespace metagrad::nn
