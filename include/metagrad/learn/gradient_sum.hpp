// SPDX-License-Identifier: MIT
// CDEP's "Grad" baseline (score_funcs.gradient_sum, a form of RRR): the input gradient of the
// batch's mean NLL, summed over the channels, squared on the blobs and summed,
//   L = NLL + λ Σ_b Σ_n Σ_{h,w} (m_b[n,h,w] · Σ_c ∂NLL/∂x[n,c,h,w])².
// One optimizer step per batch on the sum. CDEP's scripts differ: ColorMNIST's runs both backward
// passes before one step (the same update), DecoyMNIST's steps on the penalty and then again on
// the accumulated gradients of both (two steps per batch); that second form is not reproduced.
// The mean NLL makes the gradient 1/N of the per-example one, so λ's scale depends on the batch size,
// as in the original.
#pragma once
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/learn/blob_sampler.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad::learn {

template <Floating T>
struct GradientSumResult {
  Tensor<T> logits;   ///< f(x) [N, classes], attached to the parameters
  Tensor<T> nll;      ///< the batch's mean NLL
  Tensor<T> penalty;  ///< the blob penalty, attached to the parameters (second order)
};

/// The NLL and the Grad penalty of `model` on images x [N, C, H, W] with labels y, for spatial
/// blobs [B, N|1, 1, H, W]. One forward pass serves both.
template <Floating T, class M>
GradientSumResult<T> gradient_sum_penalty(M& model, const Tensor<T>& x, const IndexTensor& y, const Tensor<T>& blobs) {
  constexpr const char* op = "gradient_sum_penalty";
  detail::check_spatial_blobs(x, blobs, op);
  check(y.defined() && y.dim() == 1 && y.size(0) == x.size(0), op, "labels ", y.defined() ? y.shape() : Shape{},
        " do not give one label per example of the inputs ", x.shape());
  EnableGradGuard grad_on;
  Tensor<T> var = x.detach().requires_grad_();  // the data is a leaf of its own, not a parameter
  auto z = detail::logits_of(model, var, y, op);
  auto nll = cross_entropy(z, y);
  GradOptions<T> go;
  go.create_graph = true;
  go.retain_graph = true;  // the NLL's graph is still to be differentiated in the parameters
  const auto per_pixel = sum(grad(nll, var, go), {1});               // [N, H, W]
  const auto weight = squeeze(sum(square(blobs.detach()), {0}), 1);  // Σ_b m_b², [N|1, H, W]
  auto penalty = sum(mul(square(per_pixel), weight));
  return {std::move(z), std::move(nll), std::move(penalty)};
}

struct GradientSumOptions {
  double lambda = 1;
};

/// NLL + λ·gradient_sum_penalty over the blobs `source` gives for each batch.
template <Floating T>
class GradientSum {
 public:
  GradientSum(GradientSumOptions options, BlobSource<T> source) : o_(options), source_(std::move(source)) {
    check(o_.lambda >= 0, "GradientSum", "lambda must be >= 0, got ", o_.lambda);
    check(static_cast<bool>(source_), "GradientSum", "needs a blob source, got none");
  }

  template <class M>
  Tensor<T> operator()(M& model, const Batch<T>& batch) const {
    detail::check_batch(batch, "GradientSum");
    if (o_.lambda == 0) return cross_entropy(detail::logits_of(model, batch.x, batch.y, "GradientSum"), batch.y);
    const auto r = gradient_sum_penalty(model, batch.x, batch.y, source_(batch));
    return add(r.nll, mul(r.penalty, T(o_.lambda)));
  }
  void on_epoch(int /*epoch*/, int /*epochs*/) {}
  std::string name() const { return "grad"; }
  nlohmann::ordered_json setting() const { return {{"lambda", o_.lambda}}; }

 private:
  GradientSumOptions o_;
  BlobSource<T> source_;
};

}  // namespace metagrad::learn
