// SPDX-License-Identifier: MIT
// The explainer interface. An explainer maps (model, x, target) to an attribution of x's shape:
// one score per input feature for the logit of class target[n] of example n. A model is any
// callable Tensor -> Tensor (an nn Layer, a lambda), any module with a forward(x) -> Tensor (a
// user's nn::Module subclass need not be a Layer or define operator()), or a pointer to either.
// With create_graph the attribution stays attached to the model's parameters, so a loss on it
// (RRR, CDEP, IBP-Ex) trains through the explainer: that is the second-order use this library is
// built for.
#pragma once
#include <concepts>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/functional/transforms.hpp"
#include "metagrad/ops/indexing.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad {

struct ExplainOptions {
  /// Keep the attribution differentiable with respect to the model's parameters.
  bool create_graph = false;
};

/// A model called directly: a callable Tensor<T> -> Tensor<T>, or a module with forward(x).
template <class M, class T>
concept DirectModel = std::invocable<M&, const Tensor<T>&> || requires(M& m, const Tensor<T>& x) {
  { m.forward(x) } -> std::convertible_to<Tensor<T>>;
};
/// A DirectModel, or a (smart) pointer to one.
template <class M, class T>
concept Model = DirectModel<M, T> || requires(M& m) {
  requires DirectModel<std::remove_reference_t<decltype(*m)>, T>;
};

namespace detail {

template <Floating T, class M>
Tensor<T> run_model(M& model, const Tensor<T>& x) {
  if constexpr (std::invocable<M&, const Tensor<T>&>) return model(x);
  else if constexpr (requires { model.forward(x); }) return model.forward(x);
  else return run_model<T>(*model, x);
}

/// The model's predicted class per example, when the caller gives no target.
template <Floating T, class M>
IndexTensor resolve_target(M& model, const Tensor<T>& x, const IndexTensor& target, const char* op) {
  check(x.dim() >= 1 && x.size(0) > 0, op, "needs a batch of inputs [N, ...], got ", x.shape());
  if (!target.defined()) {
    NoGradGuard no_grad;
    const auto logits = run_model<T>(model, x.detach());
    check(logits.dim() == 2, op, "the model must return logits [N, classes], got ", logits.shape());
    return argmax(logits, 1);
  }
  check(target.dim() == 1 && target.size(0) == x.size(0), op, "target ", target.shape(), " does not give one class per example of ",
        x.shape());
  return target;
}

/// Σ_n logits[n, target[n]]: the scalar whose input gradient is every gradient explainer's raw material.
template <Floating T>
Tensor<T> target_score(const Tensor<T>& logits, const IndexTensor& target, const char* op) {
  check(logits.dim() == 2 && logits.size(0) == target.size(0), op, "the model must return logits [", target.size(0),
        ", classes], got ", logits.shape());
  return sum(gather(logits, 1, reshape(target, Shape{target.size(0), 1})));
}

/// d target_score / d x at the points `x` (a batch whose rows belong to `target`).
template <Floating T, class M>
Tensor<T> input_gradient(M& model, const Tensor<T>& x, const IndexTensor& target, const ExplainOptions& o, const char* op) {
  EnableGradGuard grad_on;
  // With create_graph and an x that is itself a graph node, differentiate through an alias so the
  // result stays attached to x; otherwise a fresh leaf.
  Tensor<T> var = (o.create_graph && x.requires_grad()) ? alias(x) : x.detach().requires_grad_();
  const auto score = target_score(run_model<T>(model, var), target, op);
  GradOptions<T> go;
  go.create_graph = o.create_graph;
  return grad(score, var, go);
}

}  // namespace detail

/// Runs `explainer` on (model, x, target): explain(IntegratedGradients{.steps = 64}, net, x, y).
template <class E, Floating T, class M>
Tensor<T> explain(const E& explainer, M&& model, const Tensor<T>& x, const IndexTensor& target = {},
                  const ExplainOptions& options = {}) {
  return explainer(model, x, target, options);
}

}  // namespace metagrad
