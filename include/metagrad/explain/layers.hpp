// SPDX-License-Identifier: MIT
// What CD and IBP share: walking a Sequential layer by layer (nested Sequentials flattened), a
// readable name for a layer neither supports, and the bias-free (and |W|) application of an
// affine layer through ParameterOverride, so a layer's own forward (stride, padding, ...) is
// reused instead of re-implemented, also while an outer functional_call rebinds its weights.
#pragma once
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
#include "metagrad/ops/unary.hpp"

namespace metagrad::detail {

inline std::string type_name(const std::type_info& type) {
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

/// The layers `model` applies, in order: a Sequential's (recursively), or the model itself.
template <Floating T>
void flatten_layers(nn::Layer<T>& model, std::vector<nn::Layer<T>*>& out) {
  if (auto* seq = dynamic_cast<nn::Sequential<T>*>(&model)) {
    for (const auto& layer : *seq) flatten_layers(*layer, out);
  } else {
    out.push_back(&model);
  }
}
template <Floating T>
std::vector<nn::Layer<T>*> flatten_layers(nn::Layer<T>& model) {
  std::vector<nn::Layer<T>*> out;
  flatten_layers(model, out);
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
