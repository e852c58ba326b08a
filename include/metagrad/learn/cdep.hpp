// SPDX-License-Identifier: MIT
// CDEP, "Interpretations are useful: penalizing explanations to align neural networks with prior
// knowledge" (Rieger, Singh, Murdoch, Yu; ICML 2020): cross entropy plus λ times the share of every
// logit that contextual decomposition attributes to a region a human marked irrelevant (a "blob"),
//   L = NLL(f(x), y) + λ Σ_b mean_{n,c} softmax([β_c(x_n; b), γ_c(x_n; b)])_0,
// with (β, γ) = CD's (rel, irrel) of blob b (explain/cd.hpp). softmax([β, γ])_0 = sigmoid(β − γ).
// As the original (score_funcs.cdep, called once per blob and summed in mnist/ColorMNIST/train.py),
// the share is averaged over examples and classes and summed over the blobs, so λ means what it
// means there. CD is made of ops, so the penalty trains the model through the decomposition; all
// blobs × examples go through CD as one batch (the same maths as a loop over blobs, fewer ops).
// The blobs come from a BlobSource (learn/blob_sampler.hpp): sampled single pixels (ColorMNIST) or
// the batch's mask (DecoyMNIST's corners).
#pragma once
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "metagrad/explain/cd.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/learn/blob_sampler.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad::learn {

/// Σ_b mean_{n,c} sigmoid(rel − irrel) of the CD of `model` at x [N, ...] for each blob of
/// blobs [B, ...] (learn/blob_sampler.hpp), attached to the model's parameters. model: anything
/// contextual_decomposition walks (explain/layers.hpp), by reference or pointer.
template <Floating T, class M>
Tensor<T> cdep_penalty(M& model, const Tensor<T>& x, const Tensor<T>& blobs) {
  constexpr const char* op = "cdep_penalty";
  detail::check_blobs(x, blobs, op);
  const std::int64_t b = blobs.size(0), n = x.size(0);
  Shape stacked{b}, flat{b * n}, mask_stacked{b, n}, mask_flat{b * n};
  for (int d = 0; d < x.dim(); ++d) stacked.push_back(x.size(d));
  for (int d = 1; d < x.dim(); ++d) flat.push_back(x.size(d));
  for (int d = 2; d < blobs.dim(); ++d) mask_stacked.push_back(blobs.size(d)), mask_flat.push_back(blobs.size(d));
  const auto xs = reshape(broadcast_to(unsqueeze(x.detach(), 0), stacked), flat);
  const auto ms = reshape(broadcast_to(blobs.detach(), mask_stacked), mask_flat);
  const auto parts = contextual_decomposition(detail::module_of(model), xs, ms);
  check(parts.rel.dim() == 2 && parts.rel.size(0) == b * n, op, "the model must return logits [", b * n,
        ", classes] for ", b * n, " rows, got ", parts.rel.shape());
  const auto share = sigmoid(sub(parts.rel, parts.irrel));
  return div(sum(share), static_cast<T>(n * parts.rel.size(1)));
}

struct CdepOptions {
  double lambda = 1;
};

/// NLL + λ·cdep_penalty over the blobs `source` gives for each batch.
template <Floating T>
class Cdep {
 public:
  Cdep(CdepOptions options, BlobSource<T> source) : o_(options), source_(std::move(source)) {
    check(o_.lambda >= 0, "Cdep", "lambda must be >= 0, got ", o_.lambda);
    check(static_cast<bool>(source_), "Cdep", "needs a blob source, got none");
  }

  template <class M>
  Tensor<T> operator()(M& model, const Batch<T>& batch) const {
    detail::check_batch(batch, "Cdep");
    const auto ce = cross_entropy(detail::logits_of(model, batch.x, batch.y, "Cdep"), batch.y);
    if (o_.lambda == 0) return ce;
    return add(ce, mul(cdep_penalty(model, batch.x, source_(batch)), T(o_.lambda)));
  }
  void on_epoch(int /*epoch*/, int /*epochs*/) {}
  std::string name() const { return "cdep"; }
  nlohmann::ordered_json setting() const { return {{"lambda", o_.lambda}}; }
  const CdepOptions& options() const { return o_; }

 private:
  CdepOptions o_;
  BlobSource<T> source_;
};

}  // namespace metagrad::learn
