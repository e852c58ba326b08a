// SPDX-License-Identifier: MIT
// CDEP's Expected Gradients baseline (Erion et al.'s attribution prior, as score_funcs.eg_scores_2d
// computes it): for every example x_n, K references x'_k drawn from the batch (with replacement,
// x_n itself included) and α_k ~ U(0, 1), the attribution map
//   EG_n[h,w] = Σ_k Σ_c |∂ softmax(f(x̃_k))_{y_n} / ∂x̃_k ⊙ (x_n − x'_k)|[c,h,w],  x̃_k = x'_k + α_k (x_n − x'_k)
// (summed over the K samples, not averaged, as the original); the penalty is Σ_b Σ_n ⟨EG_n, m_b⟩.
// The original evaluates EG once per blob; the map does not depend on the blob, so it is computed
// once and weighted by Σ_b m_b (the same sum). One optimizer step per batch on NLL + λ·penalty
// (CDEP's DecoyMNIST script takes two: see learn/gradient_sum.hpp). All N·K interpolated images go
// through the model in one batch with the graph kept for the second-order step: memory grows
// with N·K (CDEP uses K = 200 on DecoyMNIST, 50 in one ColorMNIST script).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/core/creation.hpp"
#include "metagrad/core/random.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/learn/blob_sampler.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/indexing.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/softmax.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad::learn {

/// What one draw of expected gradients used: references[n·K + k] is the batch row of x'_k for
/// example n, alphas[n·K + k] its α.
struct EgDraw {
  std::vector<std::int64_t> references;
  std::vector<double> alphas;
};

/// K references and α per example of a batch of n, from `gen` (references first, then alphas).
inline EgDraw draw_eg_references(std::int64_t n, std::int64_t k, Generator& gen) {
  check(n > 0 && k > 0, "draw_eg_references", "needs a non-empty batch and K > 0, got ", n, " and ", k);
  EgDraw d;
  for (std::int64_t i = 0; i < n * k; ++i) d.references.push_back(static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(n))));
  for (std::int64_t i = 0; i < n * k; ++i) d.alphas.push_back(gen.uniform());
  return d;
}

/// The EG maps [N, H, W] of `model` on images x [N, C, H, W] with labels y for the given draw,
/// attached to the parameters when create_graph.
template <Floating T, class M>
Tensor<T> expected_gradients_map(M& model, const Tensor<T>& x, const IndexTensor& y, const EgDraw& draw,
                                 bool create_graph = true) {
  constexpr const char* op = "expected_gradients_map";
  check(x.defined() && x.dim() == 4 && x.size(0) > 0, op, "needs images [N, C, H, W], got ",
        x.defined() ? x.shape() : Shape{});
  const std::int64_t n = x.size(0), rows = static_cast<std::int64_t>(draw.references.size());
  check(rows > 0 && rows % n == 0 && draw.alphas.size() == draw.references.size(), op, "the draw must give K ",
        "references and alphas per example of the ", n, ", got ", draw.references.size(), " and ", draw.alphas.size());
  check(y.defined() && y.dim() == 1 && y.size(0) == n, op, "labels ", y.defined() ? y.shape() : Shape{},
        " do not give one label per example of the inputs ", x.shape());
  const std::int64_t k = rows / n;
  std::vector<std::int64_t> own, labels;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < k; ++j) own.push_back(i), labels.push_back(y.data()[i]);
  for (auto r : draw.references) check(r >= 0 && r < n, op, "reference ", r, " is not a row of the batch of ", n);
  std::vector<T> alpha(draw.alphas.begin(), draw.alphas.end());
  EnableGradGuard grad_on;
  const auto data = x.detach();
  const auto xs = index_select(data, 0, from_vector<std::int64_t>(own, Shape{rows}));
  const auto refs = index_select(data, 0, from_vector<std::int64_t>(draw.references, Shape{rows}));
  const auto diff = sub(xs, refs);
  Tensor<T> path = add(refs, mul(from_vector<T>(alpha, Shape{rows, 1, 1, 1}), diff)).detach().requires_grad_();
  const auto z = detail::run_model<T>(model, path);
  check(z.dim() == 2 && z.size(0) == rows, op, "the model must return logits [", rows, ", classes], got ", z.shape());
  const auto target = gather(softmax(z, 1), 1, from_vector<std::int64_t>(labels, Shape{rows, 1}));
  GradOptions<T> go;
  go.create_graph = create_graph;
  const auto g = grad(sum(target), path, go);
  const auto per_sample = sum(abs(mul(g, diff)), {1});  // [N·K, H, W]
  return sum(reshape(per_sample, Shape{n, k, x.size(2), x.size(3)}), {1});
}

/// Σ_b Σ_n ⟨EG_n, m_b⟩ for spatial blobs [B, N|1, 1, H, W].
template <Floating T, class M>
Tensor<T> expected_gradients_penalty(M& model, const Tensor<T>& x, const IndexTensor& y, const Tensor<T>& blobs,
                                     const EgDraw& draw) {
  detail::check_spatial_blobs(x, blobs, "expected_gradients_penalty");
  const auto weight = squeeze(sum(blobs.detach(), {0}), 1);  // Σ_b m_b, [N|1, H, W]
  return sum(mul(expected_gradients_map(model, x, y, draw, true), weight));
}

struct ExpectedGradientsOptions {
  double lambda = 1;
  std::int64_t references = 200;  ///< K per example
  std::uint64_t seed = 0;         ///< the references and α of every batch
};

/// NLL + λ·expected_gradients_penalty over the blobs `source` gives for each batch.
template <Floating T>
class ExpectedGradients {
 public:
  ExpectedGradients(ExpectedGradientsOptions options, BlobSource<T> source)
      : o_(options), source_(std::move(source)), gen_(std::make_shared<Generator>(options.seed)) {
    check(o_.lambda >= 0, "ExpectedGradients", "lambda must be >= 0, got ", o_.lambda);
    check(o_.references > 0, "ExpectedGradients", "references must be > 0, got ", o_.references);
    check(static_cast<bool>(source_), "ExpectedGradients", "needs a blob source, got none");
  }

  template <class M>
  Tensor<T> operator()(M& model, const Batch<T>& batch) const {
    detail::check_batch(batch, "ExpectedGradients");
    const auto ce = cross_entropy(detail::logits_of(model, batch.x, batch.y, "ExpectedGradients"), batch.y);
    if (o_.lambda == 0) return ce;
    const auto draw = draw_eg_references(batch.x.size(0), o_.references, *gen_);
    return add(ce, mul(expected_gradients_penalty(model, batch.x, batch.y, source_(batch), draw), T(o_.lambda)));
  }
  void on_epoch(int /*epoch*/, int /*epochs*/) {}
  std::string name() const { return "eg"; }
  nlohmann::ordered_json setting() const { return {{"lambda", o_.lambda}, {"references", o_.references}}; }

 private:
  ExpectedGradientsOptions o_;
  BlobSource<T> source_;
  std::shared_ptr<Generator> gen_;  // shared: operator() is const, as the trainer's losses are
};

}  // namespace metagrad::learn
