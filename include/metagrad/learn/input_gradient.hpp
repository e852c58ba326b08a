// SPDX-License-Identifier: MIT
// The input gradient RRR and IBP-Ex+RRR penalise: ∂s/∂x of a scalar s summed over the batch and
// the classes, taken with create_graph so a penalty on it trains the model (a second-order
// derivative in the parameters). explain/'s Gradient differentiates the target logit only, so the
// class-summed scores live here. The logits come back too: the penalty's forward pass is also the
// one the cross entropy needs, so the losses run the model once.
#pragma once
#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/softmax.hpp"

namespace metagrad::learn {

/// Which scalar is differentiated.
enum class GradientOf {
  LogitSum,    ///< Σ_n Σ_k z_nk (robust_mlx's Interpreter: grad_outputs = ones over the logits)
  LogProbSum,  ///< Σ_n Σ_k log p_nk (Ross et al.'s "right for the right reasons")
};

template <Floating T>
struct InputGradient {
  Tensor<T> logits;  ///< the model's logits at x [N, C], attached to the parameters
  Tensor<T> grad;    ///< ∂s/∂x, x's shape; attached to the parameters when create_graph
};

/// The model's logits at x and the input gradient of the chosen class-summed score. Per example,
/// the sum over the batch differentiates to each example's own gradient (the model treats rows
/// independently; BatchNorm in training mode would couple them).
template <Floating T, class M>
InputGradient<T> input_gradient(M& model, const Tensor<T>& x, GradientOf of, bool create_graph = true,
                                const char* op = "input_gradient") {
  check(x.defined() && x.dim() >= 1 && x.size(0) > 0, op, "needs a batch of inputs [N, ...], got ",
        x.defined() ? x.shape() : Shape{});
  EnableGradGuard grad_on;
  // A fresh leaf: the data is not a parameter, and a caller's graph on x is not ours to extend.
  Tensor<T> var = x.detach().requires_grad_();
  Tensor<T> z = detail::run_model<T>(model, var);
  check(z.dim() == 2 && z.size(0) == x.size(0), op, "the model must return logits [", x.size(0),
        ", classes] for inputs ", x.shape(), ", got ", z.shape());
  const Tensor<T> score = of == GradientOf::LogitSum ? sum(z) : sum(log_softmax(z, 1));
  GradOptions<T> go;
  go.create_graph = create_graph;
  go.retain_graph = true;  // the logits' graph is still needed by the caller's cross entropy
  Tensor<T> g = grad(score, var, go);
  return {std::move(z), std::move(g)};
}

}  // namespace metagrad::learn
