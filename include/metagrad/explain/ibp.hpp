// SPDX-License-Identifier: MIT
// Interval bound propagation (Gowal et al. 2018), as IBP-Ex uses it (Heo et al. 2023): a box
// [lower, upper] around the input is pushed through a model, layer by layer, so that every output
// the network can produce for an input in the box lies inside the output box. Affine layers map the box's
// centre c and radius r to W·c + b and |W|·r; monotone layers (ReLU, tanh, sigmoid, pooling,
// flatten) map each bound. The bounds are made of ops, so a worst-case loss trains through them.
//
// Supported: Linear, Conv2d, ReLU, Tanh, Sigmoid, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d,
// BatchNorm (eval), Dropout (eval), Flatten, and any module built from these that declares its
// chain with layers() (Sequential, MLP, a module of one's own); a layer type of one's own adds its
// rule through ExplainRules<T>::ibp_rule. The protocol is in explain/layers.hpp.
#pragma once
#include <type_traits>
#include <typeinfo>

#include "metagrad/explain/explainer.hpp"
#include "metagrad/explain/layers.hpp"
#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/conv.hpp"
#include "metagrad/nn/dropout.hpp"
#include "metagrad/nn/flatten.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/norm.hpp"
#include "metagrad/nn/pool.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/indexing.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad {

/// One layer's IBP rule.
template <Floating T>
Bounds<T> ibp_layer(nn::Layer<T>& layer, const Bounds<T>& in) {
  auto affine = [&](auto& l) {
    const auto c = l.forward(in.center());
    const auto r = detail::apply_affine(l, in.radius(), true);
    return Bounds<T>{sub(c, r), add(c, r)};
  };
  if (auto* rules = dynamic_cast<ExplainRules<T>*>(&layer)) return rules->ibp_rule(in);
  if (auto* l = dynamic_cast<nn::Linear<T>*>(&layer)) return affine(*l);
  if (auto* l = dynamic_cast<nn::Conv2d<T>*>(&layer)) return affine(*l);
  if (auto* l = dynamic_cast<nn::BatchNorm<T>*>(&layer)) {
    check(!l->is_training(), "interval_bounds", "BatchNorm must be in evaluation mode; call eval()");
    // Per-channel a·x + c, with a of either sign: |a|·r = |BN(c + r) − BN(c)|.
    const auto c = in.center(), r = in.radius();
    const auto mid = l->forward(c);
    const auto rad = abs(sub(l->forward(add(c, r)), mid));
    return {sub(mid, rad), add(mid, rad)};
  }
  if (auto* l = dynamic_cast<nn::Dropout<T>*>(&layer)) {
    check(!l->is_training(), "interval_bounds", "Dropout must be in evaluation mode; call eval()");
    return in;
  }
  if (dynamic_cast<nn::ReLU<T>*>(&layer) || dynamic_cast<nn::Tanh<T>*>(&layer) || dynamic_cast<nn::Sigmoid<T>*>(&layer) ||
      dynamic_cast<nn::MaxPool2d<T>*>(&layer) || dynamic_cast<nn::AvgPool2d<T>*>(&layer) ||
      dynamic_cast<nn::AdaptiveAvgPool2d<T>*>(&layer) || dynamic_cast<nn::Flatten<T>*>(&layer))
    return {layer.forward(in.lower), layer.forward(in.upper)};
  if (const auto children = layer.layers(); !children.empty()) {
    Bounds<T> b = in;
    for (nn::Layer<T>* child : children) b = ibp_layer(*child, b);
    return b;
  }
  throw Error("interval_bounds: layer " + detail::type_name(typeid(layer)) +
              " is not supported (supported: Linear, Conv2d, ReLU, Tanh, Sigmoid, MaxPool2d, AvgPool2d, "
              "AdaptiveAvgPool2d, BatchNorm and Dropout in eval, Flatten, and modules that list such layers "
              "with layers(), like Sequential; a layer of another type can give its own rule by deriving from "
              "metagrad::ExplainRules<T> and overriding ibp_rule)");
}

/// Output bounds of `model` over the input box [lower, upper]. model: an nn::Layer<T> or any
/// module that declares its chain of layers with layers() (explain/layers.hpp).
template <Floating T, class M>
  requires LayerwiseModel<M, T>
Bounds<T> interval_bounds(M& model, const Tensor<T>& lower, const Tensor<T>& upper) {
  check(lower.shape() == upper.shape(), "interval_bounds", "lower ", lower.shape(), " and upper ", upper.shape(),
        " differ in shape");
  Bounds<T> b{lower, upper};
  for (nn::Layer<T>* layer : detail::flatten_layers<T>(model)) b = ibp_layer(*layer, b);
  return b;
}

/// Output bounds over the box [x − ε·mask, x + ε·mask]: only the features the mask marks (the
/// ones a human called irrelevant, in IBP-Ex) may move. mask broadcasts to x.
template <Floating T, class M>
  requires LayerwiseModel<M, T>
Bounds<T> interval_bounds(M& model, const Tensor<T>& x, std::type_identity_t<T> eps, const Tensor<T>& mask) {
  check(eps >= 0, "interval_bounds", "eps must be >= 0, got ", eps);
  check(broadcast_shapes(x.shape(), mask.shape(), "interval_bounds") == x.shape(), "interval_bounds", "mask ",
        mask.shape(), " does not broadcast to the input ", x.shape());
  const auto r = mul(mask.detach(), T(eps));
  return interval_bounds(model, sub(x, r), add(x, r));
}

/// The logits an adversary in the box can force: the lower bound for the true class, the upper
/// bound for every other. CE of these is IBP-Ex's robust loss.
template <Floating T>
Tensor<T> worst_case_logits(const Bounds<T>& b, const IndexTensor& target) {
  check(b.lower.dim() == 2 && target.dim() == 1 && target.size(0) == b.lower.size(0), "worst_case_logits",
        "bounds ", b.lower.shape(), " and target ", target.shape(), " do not match");
  const auto is_target = one_hot<T>(target, b.lower.size(1));
  return add(mul(is_target, b.lower), mul(sub(T(1), is_target), b.upper));
}

}  // namespace metagrad
