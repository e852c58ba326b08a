// SPDX-License-Identifier: MIT
// Module: a tree of layers with ordered, named parameters and buffers. A layer keeps its tensors as
// ordinary members and registers them by reference, so its forward reads plain members while the
// module can still list them under dotted names ("encoder.layers.0.attn.q.weight") and rebind them:
// functional_call swaps in other tensors (graph nodes of an unrolled inner loop) for one call.
// Layer adds the single-tensor forward that Sequential chains.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "metagrad/core/tensor.hpp"
#include "metagrad/nn/named_tensors.hpp"

namespace metagrad::nn {

template <Floating T = float>
class Module {
 public:
  /// A registered tensor member: its dotted name and the member itself.
  using Slot = std::pair<std::string, Tensor<T>*>;

  Module() = default;
  // Modules hold pointers to their own members, so they stay where they were built.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  /// Every parameter under its dotted name: this module's own first, then each child's in turn.
  NamedTensors<T> named_parameters() const { return collect(&Module::params_); }
  std::vector<Tensor<T>> parameters() const { return named_parameters().tensors(); }
  NamedTensors<T> named_buffers() const { return collect(&Module::buffers_); }
  /// Total number of parameter elements.
  std::int64_t num_parameters() const {
    std::int64_t n = 0;
    for (const auto& [name, p] : named_parameters()) n += p.numel();
    return n;
  }

  /// The members themselves, in named_parameters() order. Assigning through a slot rebinds the
  /// module's parameter; ParameterOverride (functional_call) does that and restores it.
  std::vector<Slot> parameter_slots() { return collect_slots(&Module::params_); }
  std::vector<Slot> buffer_slots() { return collect_slots(&Module::buffers_); }

  /// Parameters and buffers (detached: same storage, no history), module by module, each module's
  /// parameters before its buffers, as PyTorch orders them.
  NamedTensors<T> state_dict() const {
    NamedTensors<T> out;
    visit(*this, "", [&](const std::string& prefix, const Module& m) {
      for (const auto& [name, slot] : m.params_) out.insert(prefix + name, slot->detach());
      for (const auto& [name, slot] : m.buffers_) out.insert(prefix + name, slot->detach());
    });
    return out;
  }

  /// Copies `state` into the module's parameters and buffers (their identity is kept, so optimizers
  /// holding them stay valid). Every problem is reported in one error naming the keys and shapes,
  /// and nothing is copied unless all checks pass. With strict=false, missing and unexpected keys
  /// are allowed; shape mismatches never are.
  void load_state_dict(const NamedTensors<T>& state, bool strict = true) {
    std::vector<Slot> targets;
    std::unordered_set<std::string> target_names;
    visit(*this, "", [&](const std::string& prefix, Module& m) {
      for (auto* list : {&m.params_, &m.buffers_})
        for (const auto& [name, slot] : *list) {
          targets.emplace_back(prefix + name, slot);
          target_names.insert(prefix + name);
        }
    });
    std::string problems;
    auto report = [&](auto&&... parts) {
      problems += problems.empty() ? "" : "; ";
      problems += detail::concat(parts...);
    };
    std::vector<std::pair<const Tensor<T>*, Tensor<T>*>> copies;
    for (const auto& [name, slot] : targets) {
      const Tensor<T>* src = state.find(name);
      if (!src) {
        if (strict) report("missing key '", name, "' (module has ", slot->shape(), ")");
      } else if (!src->defined()) {
        report("key '", name, "' holds an undefined tensor");
      } else if (!(src->shape() == slot->shape())) {
        report("shape mismatch for '", name, "': checkpoint has ", src->shape(), ", module has ", slot->shape());
      } else {
        copies.emplace_back(src, slot);
      }
    }
    if (strict)
      for (const auto& [name, t] : state)
        if (!target_names.contains(name))
          report("unexpected key '", name, "' (checkpoint has ", t.defined() ? t.shape().str() : "undefined", ")");
    check(problems.empty(), "load_state_dict", problems);
    for (const auto& [src, dst] : copies)
      if (src->data() != dst->data()) {
        check(!src->tangent().defined(), "load_state_dict", "in-place op on a tensor of shape ", src->shape(),
              " with a forward-mode tangent is not supported");
        std::copy_n(src->data(), src->numel(), dst->mutable_data("load_state_dict"));
      }
  }

  /// Switches this module and every descendant to training (or evaluation) behaviour.
  void train(bool on = true) {
    visit(*this, "", [on](const std::string&, Module& m) { m.training_ = on; });
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Drops the accumulated .grad() of every parameter.
  void zero_grad() {
    for (auto& [name, slot] : parameter_slots()) slot->zero_grad();
  }

  /// The direct children, in registration order.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

 protected:
  /// Registers the member `slot` as a parameter (a leaf that requires grad) and returns it.
  Tensor<T>& register_parameter(std::string name, Tensor<T>& slot) {
    check_new_name(name, "register_parameter");
    check(slot.defined(), "register_parameter", "parameter '", name, "' is an undefined tensor");
    check(slot.is_leaf(), "register_parameter", "parameter '", name, "' of shape ", slot.shape(),
          " must be a leaf tensor, not the result of an op (detach() it)");
    slot.requires_grad_(true);
    params_.emplace_back(std::move(name), &slot);
    return slot;
  }
  /// Registers the member `slot` as a buffer: state saved in state_dict but not trained (running stats).
  Tensor<T>& register_buffer(std::string name, Tensor<T>& slot) {
    check_new_name(name, "register_buffer");
    check(slot.defined(), "register_buffer", "buffer '", name, "' is an undefined tensor");
    buffers_.emplace_back(std::move(name), &slot);
    return slot;
  }
  /// Registers a child this module owns (shared with the caller).
  template <class M>
    requires std::is_base_of_v<Module, M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> child) {
    check_new_name(name, "register_module");
    check(child != nullptr, "register_module", "module '", name, "' is null");
    children_.emplace_back(std::move(name), child);
    return child;
  }
  /// Registers a child that is a member of this module (not owned through the pointer).
  template <class M>
    requires std::is_base_of_v<Module, M>
  M& register_module(std::string name, M& child) {
    register_module(std::move(name), std::shared_ptr<Module>(std::shared_ptr<Module>(), &child));
    return child;
  }

 private:
  using Entries = std::vector<std::pair<std::string, Tensor<T>*>>;

  void check_new_name(const std::string& name, const char* op) const {
    check(!name.empty() && name.find('.') == std::string::npos, op, "name '", name,
          "' must be non-empty and contain no '.'");
    auto taken = [&](const auto& list) {
      return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
    };
    check(!taken(params_) && !taken(buffers_) && !taken(children_), op, "name '", name, "' is already registered");
  }

  /// Calls fn(prefix, module) for `self` and its descendants, depth first, parents first; Self is
  /// Module or const Module.
  template <class Self, class Fn>
  static void visit(Self& self, const std::string& prefix, Fn&& fn) {
    fn(prefix, self);
    for (const auto& [name, child] : self.children_) visit(static_cast<Self&>(*child), prefix + name + ".", fn);
  }

  NamedTensors<T> collect(Entries Module::*list) const {
    NamedTensors<T> out;
    visit(*this, "", [&](const std::string& prefix, const Module& m) {
      for (const auto& [name, slot] : m.*list) out.insert(prefix + name, *slot);
    });
    return out;
  }
  std::vector<Slot> collect_slots(Entries Module::*list) {
    std::vector<Slot> out;
    visit(*this, "", [&](const std::string& prefix, Module& m) {
      for (const auto& [name, slot] : m.*list) out.emplace_back(prefix + name, slot);
    });
    return out;
  }

  Entries params_;
  Entries buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

/// A module with one tensor in and one tensor out: what Sequential chains.
template <Floating T = float>
class Layer : public Module<T> {
 public:
  virtual Tensor<T> forward(const Tensor<T>& x) = 0;
  Tensor<T> operator()(const Tensor<T>& x) { return forward(x); }

  /// The layers forward applies one after the other, when it is such a chain (Sequential's, or
  /// those a user's layer lists by overriding this); empty for a layer that is one step. Layer-wise
  /// explainers (interval_bounds, contextual_decomposition) walk a model through this.
  virtual std::vector<Layer*> layers() { return {}; }
};

}  // namespace metagrad::nn
