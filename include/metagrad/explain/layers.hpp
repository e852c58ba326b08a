// SPDX-License-Identifier: MIT
// The layer protocol of the layer-wise explainers (interval_bounds, contextual_decomposition,
// agglomerate, ContextualDecomposition): what a model must declare to be walked layer by layer,
// and how a layer type of one's own adds its rules. Also what CD and IBP share: a readable name
// for a layer neither supports, and the bias-free (and |W|) application of an affine layer through
// ParameterOverride, so a layer's own forward (stride, padding, ...) is reused instead of
// re-implemented, also while an outer functional_call rebinds its weights.
//
// The protocol (see docs/pytorch.md):
//  1. A model is walked as the chain of layers its layers() returns, recursively: every
//     nn::Layer<T> has a virtual layers() (empty: the layer is one step), nn::Sequential (and MLP)
//     return their children, and a module of one's own declares
//         std::vector<nn::Layer<T>*> layers() { return {&fc1, &relu, &fc2}; }
//     listing, in order, the layers its forward applies one after the other. The module may be a
//     plain nn::Module<T> with a non-virtual forward; in an nn::Layer<T> the declaration overrides
//     the virtual one, so such a layer is walked also when nested in a Sequential. The list must
//     be what forward computes: the explainers apply the list, not forward.
//  2. A step (a layer whose layers() is empty) needs a rule. Linear, Conv2d, ReLU, Tanh, Sigmoid,
//     pooling, Flatten, BatchNorm and Dropout have built-in ones; a layer type of one's own gets
//     rules by also deriving from ExplainRules<T> and overriding ibp_rule (interval bounds) and/or
//     cd_rule (contextual decomposition). One mechanism serves both explainers; a rule it does not
//     override is reported as missing, naming the layer.
//  3. A step without a rule is an error naming the layer's (demangled) type and the supported ones.
#pragma once
#include <concepts>
#include <string>
#include <typeinfo>
#include <vector>
#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#include <cstdlib>
#endif

#include "metagrad/core/creation.hpp"
#include "metagrad/nn/functional_call.hpp"
#include "metagrad/nn/sequential.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad {

/// A box [lower, upper] of tensors: what interval bound propagation carries through a model.
template <Floating T>
struct Bounds {
  Tensor<T> lower, upper;
  Tensor<T> center() const { return mul(add(lower, upper), T(0.5)); }
  Tensor<T> radius() const { return mul(sub(upper, lower), T(0.5)); }
  /// upper − lower: how loose the bounds are.
  Tensor<T> width() const { return sub(upper, lower); }
};

/// The two parts CD carries: what the masked features explain, and the rest.
template <Floating T>
struct Decomposition {
  Tensor<T> rel, irrel;
  Tensor<T> total() const { return add(rel, irrel); }
};

/// A type's readable (demangled) name, for errors that name a layer.
inline std::string explain_type_name(const std::type_info& type) {
#if __has_include(<cxxabi.h>)
  int status = 0;
  char* demangled = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : type.name();
  std::free(demangled);
  return name;
#else
  return type.name();
#endif
}

/// Rules for a layer type the explainers do not know: derive the layer from ExplainRules<T> as
/// well as from nn::Layer<T>, and override the rules it supports. Both must be made of ops (so a
/// loss on the result trains through them); ibp_rule must enclose every output of an input in the
/// box, and cd_rule must return parts that sum to the layer's output of in.total().
template <Floating T>
class ExplainRules {
 public:
  virtual ~ExplainRules() = default;
  virtual Bounds<T> ibp_rule(const Bounds<T>& in) {
    (void)in;
    throw Error("interval_bounds: layer " + explain_type_name(typeid(*this)) +
                " derives from ExplainRules but does not override ibp_rule");
  }
  virtual Decomposition<T> cd_rule(const Decomposition<T>& in) {
    (void)in;
    throw Error("contextual_decomposition: layer " + explain_type_name(typeid(*this)) +
                " derives from ExplainRules but does not override cd_rule");
  }
};

/// What the layer-wise explainers accept: anything with a layers() listing nn::Layer<T>s (every
/// nn::Layer<T>, and a module of one's own that declares the chain).
template <class M, class T>
concept LayerwiseModel = requires(M& m) {
  { m.layers() } -> std::convertible_to<std::vector<nn::Layer<T>*>>;
};

}  // namespace metagrad

namespace metagrad::detail {

inline std::string type_name(const std::type_info& type) { return explain_type_name(type); }

/// Appends the steps `layer` takes: its layers(), recursively, or the layer itself.
template <Floating T>
void flatten_layers(nn::Layer<T>& layer, std::vector<nn::Layer<T>*>& out, int depth = 0) {
  // A layer listing itself (or a cycle) would recurse forever.
  check(depth < 256, "flatten_layers", "layers() of ", type_name(typeid(layer)), " nest deeper than 256 levels");
  const auto children = layer.layers();
  if (children.empty()) {
    out.push_back(&layer);
    return;
  }
  for (nn::Layer<T>* child : children) {
    check(child != nullptr, "flatten_layers", "layers() of ", type_name(typeid(layer)), " holds a null layer");
    flatten_layers(*child, out, depth + 1);
  }
}
/// The steps `model` applies, in order (the layer protocol above).
template <Floating T, class M>
  requires LayerwiseModel<M, T>
std::vector<nn::Layer<T>*> flatten_layers(M& model) {
  std::vector<nn::Layer<T>*> out;
  if constexpr (std::derived_from<M, nn::Layer<T>>) {
    flatten_layers(static_cast<nn::Layer<T>&>(model), out);
  } else {
    const std::vector<nn::Layer<T>*> chain = model.layers();
    check(!chain.empty(), "flatten_layers", "layers() of ", type_name(typeid(model)), " lists no layers");
    for (nn::Layer<T>* child : chain) {
      check(child != nullptr, "flatten_layers", "layers() of ", type_name(typeid(model)), " holds a null layer");
      flatten_layers(*child, out);
    }
  }
  return out;
}

/// layer(x) with its bias set to zero and, with `absolute`, its weight replaced by |W|.
template <Floating T, class L>
Tensor<T> apply_affine(L& layer, const Tensor<T>& x, bool absolute = false) {
  NamedTensors<T> replaced;
  if (absolute) replaced.insert("weight", abs(layer.weight));
  if (layer.bias.defined()) replaced.insert("bias", zeros_like(layer.bias));
  ParameterOverride<T> scope(layer, replaced);
  return layer.forward(x);
}

}  // namespace metagrad::detail
