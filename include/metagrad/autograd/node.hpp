// SPDX-License-Identifier: MIT
// Node: one recorded op. It holds its inputs (they are both the graph's edges and the values its
// backward rule reads), a weak link to its output (a strong one would be a reference cycle), and
// the rule. record() is how every op attaches one to its result.
#pragma once
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
}  // namespace detail

/// Attaches a node with backward `rule(grad_output, BackwardContext&)` to `out` when recording is
/// on and some input requires grad; otherwise returns `out` untouched (and allocates nothing).
/// The rule must be written with ops, so that under create_graph it is itself recorded and
/// differentiable again.
template <Floating T, class Rule>
Tensor<T> record(const char* name, Tensor<T> out, std::span<const Tensor<T>> inputs, Rule&& rule) {
  if (!GradMode::enabled()) return out;
  bool any = false;
  for (const auto& t : inputs) any = any || t.requires_grad();
  if (!any) return out;
  auto node = std::make_shared<detail::RuleNode<T, std::decay_t<Rule>>>(
      name, std::vector<Tensor<T>>(inputs.begin(), inputs.end()), std::forward<Rule>(rule));
  node->output = out.impl();
  // The engine orders nodes by sequence and prunes by it, so a result must be newer than its
  // inputs even when an op allocated it before computing one of them.
  out.impl()->sequence = detail::next_sequence_number();
  out.impl()->grad_fn = std::move(node);
  out.impl()->requires_grad = true;
  return out;
}

template <Floating T, class Rule>
Tensor<T> record(const char* name, Tensor<T> out, std::initializer_list<Tensor<T>> inputs, Rule&& rule) {
  return record(name, std::move(out), std::span<const Tensor<T>>(inputs.begin(), inputs.size()), std::forward<Rule>(rule));
}

}  // namespace metagrad
