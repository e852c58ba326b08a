// SPDX-License-Identifier: MIT
// Node: one recorded op. It holds its inputs (they are both the graph's edges and the values its
// backward rule reads), a weak link to its output (a strong one would be a reference cycle), and
// the rule. record() is how every op attaches one to its result, and also where forward mode
// happens: every op passes a tangent rule too, so the compiler enforces that each op has one.
#pragma once
#include <algorithm>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad {

template <Floating T>
class Node;

namespace detail {
/// Clears a node's input tensors without recursion. Dropping a tensor drops its node, which drops
/// its inputs, and so on: on a long chain (a deep unroll) that recursion overflows the stack.
/// A node that is about to die is moved to a thread-local worklist instead, and the outermost
/// call destroys the worklist in a loop, so the depth stays constant however long the graph.
template <Floating T>
void drop_inputs(std::vector<Tensor<T>>& inputs) noexcept {
  thread_local std::vector<std::shared_ptr<Node<T>>> pending;
  thread_local bool draining = false;
  for (auto& t : inputs) {
    const auto& impl = t.impl();
    // Only a tensor this node holds alone dies here; a shared one keeps its node alive anyway.
    if (impl && impl.use_count() == 1 && impl->grad_fn) {
      try {
        pending.push_back(std::move(impl->grad_fn));
      } catch (...) {  // out of memory: fall back to ordinary (recursive) destruction
      }
    }
  }
  inputs.clear();
  if (draining) return;
  draining = true;
  while (!pending.empty()) {
    std::shared_ptr<Node<T>> node = std::move(pending.back());
    pending.pop_back();
    node.reset();  // may append that node's inputs' nodes to `pending`
  }
  draining = false;
}
}  // namespace detail

/// What a backward rule sees: the inputs, the output, which input gradients are wanted, and
/// where to put them. Rules write their results with set(i, grad) using ordinary ops.
template <Floating T>
class BackwardContext {
 public:
  BackwardContext(std::span<const Tensor<T>> inputs, Tensor<T> output, std::span<const bool> wanted,
                  std::span<Tensor<T>> results)
      : inputs_(inputs), output_(std::move(output)), wanted_(wanted), results_(results) {}

  const Tensor<T>& input(std::size_t i) const { return inputs_[i]; }
  const Tensor<T>& output() const { return output_; }
  bool wants(std::size_t i) const { return wanted_[i]; }
  void set(std::size_t i, Tensor<T> grad) {
    if (wanted_[i]) results_[i] = std::move(grad);
  }

 private:
  std::span<const Tensor<T>> inputs_;
  Tensor<T> output_;
  std::span<const bool> wanted_;
  std::span<Tensor<T>> results_;
};

template <Floating T>
class Node {
 public:
  Node(const char* name, std::vector<Tensor<T>> inputs) : name_(name), inputs_(std::move(inputs)) {
    versions_.reserve(inputs_.size());
    for (const auto& t : inputs_) versions_.push_back(t.version());
  }
  virtual ~Node() { detail::drop_inputs(inputs_); }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const char* name() const { return name_; }
  std::span<const Tensor<T>> inputs() const { return inputs_; }
  bool released() const { return released_; }
  /// Drops the saved inputs after a backward pass without retain_graph.
  void release() {
    detail::drop_inputs(inputs_);
    inputs_.shrink_to_fit();
    released_ = true;
  }
  std::uint64_t saved_version(std::size_t i) const { return versions_[i]; }

  /// Runs the backward rule for the output gradient `grad`.
  virtual void apply(const Tensor<T>& grad, BackwardContext<T>& ctx) = 0;

  std::weak_ptr<TensorImpl<T>> output;

 private:
  const char* name_;
  std::vector<Tensor<T>> inputs_;
  std::vector<std::uint64_t> versions_;
  bool released_ = false;
};

namespace detail {
template <Floating T, class Rule>
class RuleNode final : public Node<T> {
 public:
  RuleNode(const char* name, std::vector<Tensor<T>> inputs, Rule rule)
      : Node<T>(name, std::move(inputs)), rule_(std::move(rule)) {}
  void apply(const Tensor<T>& grad, BackwardContext<T>& ctx) override { rule_(grad, ctx); }

 private:
  Rule rule_;
};

/// A second handle to `out` for its tangent rule. The tangent is stored in out, so a tangent
/// computation recorded with out itself as an input would hold out through its node: a reference
/// cycle that never frees. The alias shares out's storage, history and creation number, and the
/// engine treats it as out (GraphEntry keys), so gradients through it still reach out's node.
/// Without history, out's value is a constant of the tangent and a plain detached view serves.
template <Floating T>
Tensor<T> output_alias(const Tensor<T>& out) {
  if (!out.grad_fn()) return out.detach();
  auto impl = std::make_shared<TensorImpl<T>>(*out.impl());
  impl->grad.reset();
  impl->tangent.reset();
  impl->output_alias = true;
  return Tensor<T>(std::move(impl));
}
}  // namespace detail

/// What a tangent rule sees: the inputs, their tangents (undefined = zero), and the output. A rule
/// returns the output's tangent, written with ops (so tangents are differentiable again, in
/// either mode), or an undefined tensor for zero. Terms whose tangent is undefined are skipped
/// rather than multiplied out as zeros.
template <Floating T>
class TangentContext {
 public:
  TangentContext(std::span<const Tensor<T>> inputs, std::span<const Tensor<T>> tangents, const Tensor<T>& output)
      : inputs_(inputs), tangents_(tangents), output_(output) {}

  std::size_t size() const { return inputs_.size(); }
  /// Input i as a primal: while the rule runs, the inputs' tangents are set aside (see attach_tangent).
  const Tensor<T>& input(std::size_t i) const { return inputs_[i]; }
  bool has_tangent(std::size_t i) const { return tangents_[i].defined(); }
  /// Input i's tangent; undefined when it has none (a zero tangent).
  const Tensor<T>& tangent(std::size_t i) const { return tangents_[i]; }
  /// Input i's tangent, zeros of its shape when it has none (for ops that must place every piece).
  Tensor<T> tangent_or_zeros(std::size_t i) const {
    if (has_tangent(i)) return tangents_[i];
    auto z = Tensor<T>::empty(inputs_[i].shape());
    std::fill_n(z.fresh_data(), z.numel(), T(0));
    return z;
  }
  /// The op's output, differentiable (see detail::output_alias), without its tangent.
  const Tensor<T>& output() const {
    if (!alias_.defined()) alias_ = detail::output_alias(output_);
    return alias_;
  }
  const Shape& output_shape() const { return output_.shape(); }

 private:
  std::span<const Tensor<T>> inputs_;
  std::span<const Tensor<T>> tangents_;
  const Tensor<T>& output_;
  mutable Tensor<T> alias_;
};

namespace detail {
template <Floating T>
bool any_tangent(std::span<const Tensor<T>> inputs) {
  for (const auto& t : inputs)
    if (t.defined() && t.impl()->tangent) return true;
  return false;
}

/// Sets the inputs' tangents aside for its scope and puts them back (also on an exception).
template <Floating T>
class TangentsSetAside {
 public:
  TangentsSetAside(std::span<const Tensor<T>> inputs, std::span<const Tensor<T>> tangents)
      : inputs_(inputs), tangents_(tangents) {
    for (const auto& t : inputs_)
      if (t.defined()) t.impl()->tangent.reset();
  }
  ~TangentsSetAside() {
    for (std::size_t i = 0; i < inputs_.size(); ++i)
      if (tangents_[i].defined()) inputs_[i].impl()->tangent = tangents_[i].impl();
  }
  TangentsSetAside(const TangentsSetAside&) = delete;
  TangentsSetAside& operator=(const TangentsSetAside&) = delete;

 private:
  std::span<const Tensor<T>> inputs_;
  std::span<const Tensor<T>> tangents_;
};

/// Runs the tangent rule and attaches its result to out, checked against out's shape. The rule
/// sees its inputs as primals: the ops it runs on them would otherwise propagate the inputs'
/// tangents too, computing products of two tangents (wasted work, and a meaningless tangent of
/// the tangent). Tangents of the tangents themselves still propagate, so a tangent may carry one.
/// (Setting aside writes the inputs' tangent fields, so one tensor with a tangent must not be an
/// input on two threads at once.)
template <Floating T, class TangentRule>
void attach_tangent(const char* name, const Tensor<T>& out, std::span<const Tensor<T>> inputs, TangentRule& rule) {
  std::vector<Tensor<T>> tangents;
  tangents.reserve(inputs.size());
  for (const auto& t : inputs) tangents.push_back(t.defined() ? t.tangent() : Tensor<T>());
  Tensor<T> tangent;
  {
    const GradModeGuard recording(GradMode::enabled() && TangentRecording::enabled());
    const TangentsSetAside<T> aside(inputs, tangents);
    const TangentContext<T> ctx(inputs, tangents, out);
    tangent = rule(ctx);
  }
  if (!tangent.defined()) return;
  check(tangent.shape() == out.shape(), name, "tangent rule produced a tangent of shape ", tangent.shape(),
        " for an output of shape ", out.shape(), " (internal error)");
  out.impl()->tangent = tangent.impl();
}
}  // namespace detail

/// Attaches a node with backward `rule(grad_output, BackwardContext&)` to `out` when recording is
/// on and some input requires grad, and, whenever some input has a forward-mode tangent, gives
/// `out` the tangent `tangent_rule(TangentContext&)` returns -- under no_grad too, as forward mode
/// needs no tape. Both rules must be written with ops, so that they are themselves recorded and
/// propagate tangents: that is what makes every derivative differentiable again, in both modes.
/// With neither, `out` comes back untouched (and nothing is allocated).
template <Floating T, class Rule, class TangentRule>
Tensor<T> record(const char* name, Tensor<T> out, std::span<const Tensor<T>> inputs, Rule&& rule,
                 TangentRule&& tangent_rule) {
  if (GradMode::enabled()) {
    bool any = false;
    for (const auto& t : inputs) any = any || t.requires_grad();
    if (any) {
      auto node = std::make_shared<detail::RuleNode<T, std::decay_t<Rule>>>(
          name, std::vector<Tensor<T>>(inputs.begin(), inputs.end()), std::forward<Rule>(rule));
      node->output = out.impl();
      // The engine orders nodes by sequence and prunes by it, so a result must be newer than its
      // inputs even when an op allocated it before computing one of them.
      out.impl()->sequence = detail::next_sequence_number();
      out.impl()->grad_fn = std::move(node);
      out.impl()->requires_grad = true;
    }
  }
  // After the node: a tangent rule that reads the output then records a path back through it.
  if (detail::any_tangent(inputs)) detail::attach_tangent(name, out, inputs, tangent_rule);
  return out;
}

template <Floating T, class Rule, class TangentRule>
Tensor<T> record(const char* name, Tensor<T> out, std::initializer_list<Tensor<T>> inputs, Rule&& rule,
                 TangentRule&& tangent_rule) {
  return record(name, std::move(out), std::span<const Tensor<T>>(inputs.begin(), inputs.size()), std::forward<Rule>(rule),
                std::forward<TangentRule>(tangent_rule));
}

}  // namespace metagrad
