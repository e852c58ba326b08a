// SPDX-License-Identifier: MIT
// functional_call: run a module with other tensors in place of its parameters (and buffers), the
// torch.func.functional_call idea. Meta-learning needs it: an unrolled inner loop produces new
// parameters that are graph nodes of the outer parameters, and the module's forward must read
// those. ParameterOverride rebinds the module's members for a scope and restores them when the
// scope ends, also when the forward throws; layers need no parameter arguments of their own.
#pragma once
#include <algorithm>
#include <concepts>
#include <functional>
#include <span>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include "metagrad/nn/module.hpp"

namespace metagrad {

template <Floating T>
class ParameterOverride {
 public:
  /// Rebinds each named parameter or buffer to its tensor in `values`. A name the module does not
  /// have is an error; one left out keeps the module's own tensor unless `strict`.
  ParameterOverride(nn::Module<T>& module, const NamedTensors<T>& values, bool strict = false) {
    auto slots = module.parameter_slots();
    const auto buffers = module.buffer_slots();
    slots.insert(slots.end(), buffers.begin(), buffers.end());
    std::string problems;
    std::vector<std::pair<Tensor<T>*, const Tensor<T>*>> plan;
    std::size_t found = 0;
    for (const auto& [name, slot] : slots) {
      if (const Tensor<T>* value = values.find(name)) {
        ++found;
        check_value(name, *slot, *value, problems);
        plan.emplace_back(slot, value);
      } else if (strict) {
        add_problem(problems, detail::concat("missing '", name, "' (", slot->shape(), ")"));
      }
    }
    if (found != values.size())
      for (const auto& [name, t] : values)
        if (std::none_of(slots.begin(), slots.end(), [&](const auto& s) { return s.first == name; }))
          add_problem(problems, detail::concat("the module has no parameter or buffer named '", name, "'"));
    check(problems.empty(), "functional_call", problems);
    apply(plan);
  }

  /// Rebinds every parameter, in named_parameters() order.
  ParameterOverride(nn::Module<T>& module, std::span<const Tensor<T>> params) {
    const auto slots = module.parameter_slots();
    check(params.size() == slots.size(), "functional_call", params.size(), " tensors given for a module with ",
          slots.size(), " parameters");
    std::string problems;
    std::vector<std::pair<Tensor<T>*, const Tensor<T>*>> plan;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      check_value(slots[i].first, *slots[i].second, params[i], problems);
      plan.emplace_back(slots[i].second, &params[i]);
    }
    check(problems.empty(), "functional_call", problems);
    apply(plan);
  }
  ParameterOverride(nn::Module<T>& module, const std::vector<Tensor<T>>& params)
      : ParameterOverride(module, std::span<const Tensor<T>>(params)) {}

  ~ParameterOverride() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) *it->first = std::move(it->second);
  }
  ParameterOverride(const ParameterOverride&) = delete;
  ParameterOverride& operator=(const ParameterOverride&) = delete;

 private:
  static void add_problem(std::string& problems, const std::string& p) {
    problems += problems.empty() ? "" : "; ";
    problems += p;
  }
  static void check_value(const std::string& name, const Tensor<T>& slot, const Tensor<T>& value,
                          std::string& problems) {
    if (!value.defined())
      add_problem(problems, detail::concat("'", name, "' is given an undefined tensor"));
    else if (!(value.shape() == slot.shape()))
      add_problem(problems,
                  detail::concat("shape mismatch for '", name, "': given ", value.shape(), ", module has ", slot.shape()));
  }
  // Only reached once every check has passed; assigning handles cannot throw.
  void apply(const std::vector<std::pair<Tensor<T>*, const Tensor<T>*>>& plan) {
    saved_.reserve(plan.size());
    for (const auto& [slot, value] : plan) {
      saved_.emplace_back(slot, *slot);
      *slot = *value;
    }
  }

  std::vector<std::pair<Tensor<T>*, Tensor<T>>> saved_;  // each rebound member and its own tensor
};

namespace detail {
// A tensor is itself callable with no arguments (its element at the empty index), so "callable"
// alone would not tell a forward function from the input of a layer.
template <class Fn, class T>
concept ForwardFn = std::invocable<Fn> && !std::same_as<std::remove_cvref_t<Fn>, Tensor<T>>;
}  // namespace detail

/// fn() run with `module`'s parameters (and buffers) named in `params` replaced; they are restored
/// afterwards, also when fn throws.
template <Floating T, detail::ForwardFn<T> Fn>
auto functional_call(nn::Module<T>& module, const NamedTensors<T>& params, Fn&& fn) {
  ParameterOverride<T> guard(module, params);
  return std::invoke(std::forward<Fn>(fn));
}
/// fn() run with all of `module`'s parameters replaced by `params`, in named_parameters() order.
template <Floating T, detail::ForwardFn<T> Fn>
auto functional_call(nn::Module<T>& module, std::span<const Tensor<T>> params, Fn&& fn) {
  ParameterOverride<T> guard(module, params);
  return std::invoke(std::forward<Fn>(fn));
}
template <Floating T, detail::ForwardFn<T> Fn>
auto functional_call(nn::Module<T>& module, const std::vector<Tensor<T>>& params, Fn&& fn) {
  return functional_call(module, std::span<const Tensor<T>>(params), std::forward<Fn>(fn));
}

/// layer.forward(x) with its parameters replaced.
template <Floating T>
Tensor<T> functional_call(nn::Layer<T>& layer, const NamedTensors<T>& params, const Tensor<T>& x) {
  return functional_call(layer, params, [&] { return layer.forward(x); });
}
template <Floating T>
Tensor<T> functional_call(nn::Layer<T>& layer, const std::vector<Tensor<T>>& params, const Tensor<T>& x) {
  return functional_call(layer, params, [&] { return layer.forward(x); });
}

}  // namespace metagrad
