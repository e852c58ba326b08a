// SPDX-License-Identifier: MIT
// grad() and backward(): one iterative reverse walk over the recorded graph. Nodes are visited in
// decreasing creation order (a topological order that needs no recursion, so deep unrolls cannot
// overflow the stack), and only nodes that lead to a requested input run. With create_graph the
// backward rules are recorded, so the gradients are differentiable again, to any order.
#pragma once
#include <algorithm>
#include <limits>
#include <optional>
#include <queue>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/autograd/node.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/core/creation.hpp"

namespace metagrad {

template <Floating T>
struct GradOptions {
  /// One per output; an undefined entry (or none at all) means ones, allowed for one-element outputs.
  std::vector<Tensor<T>> grad_outputs = {};
  /// Record the backward pass so its results can be differentiated again.
  bool create_graph = false;
  /// Keep the graph for another pass; defaults to create_graph.
  std::optional<bool> retain_graph = std::nullopt;
  /// Return an undefined tensor for an input the outputs do not depend on, instead of throwing.
  bool allow_unused = false;
};

namespace detail {

template <Floating T>
struct GraphEntry {
  std::shared_ptr<TensorImpl<T>> impl;
  Tensor<T> grad;       // sum of the contributions received so far
  bool needed = false;      // leads to a requested input
  bool discovered = false;  // reached from the outputs
  bool queued = false;      // pushed on the ready queue
};

/// Sums contributions with the add op, not a raw kernel even when nothing is recorded: the op
/// also adds their forward-mode tangents, which forward-over-reverse reads off the result.
template <Floating T>
void accumulate(GraphEntry<T>& entry, Tensor<T> g) {
  entry.grad = entry.grad.defined() ? add(entry.grad, g) : std::move(g);
}

/// The entry of `impl` in `entries`, created if new. An op's output alias (made for its tangent
/// rule, autograd/node.hpp) is that output: one entry, so the op's node runs once with the sum.
template <Floating T>
GraphEntry<T>& entry_for(std::unordered_map<TensorImpl<T>*, GraphEntry<T>>& entries,
                         const std::shared_ptr<TensorImpl<T>>& impl) {
  if (impl->output_alias) [[unlikely]] {
    if (auto out = impl->grad_fn->output.lock()) {
      auto& e = entries[out.get()];
      if (!e.impl) e.impl = std::move(out);
      return e;
    }
  }
  auto& e = entries[impl.get()];
  if (!e.impl) e.impl = impl;
  return e;
}

}  // namespace detail

/// Gradients of `outputs` (weighted by grad_outputs) with respect to `inputs`.
template <Floating T>
std::vector<Tensor<T>> grad(std::span<const Tensor<T>> outputs, std::span<const Tensor<T>> inputs,
                            const GradOptions<T>& options = {}) {
  using Entry = detail::GraphEntry<T>;
  using ImplPtr = TensorImpl<T>*;
  const bool retain = options.retain_graph.value_or(options.create_graph);
  check(!outputs.empty(), "grad", "no outputs given");
  check(options.grad_outputs.empty() || options.grad_outputs.size() == outputs.size(), "grad", outputs.size(),
        " outputs but ", options.grad_outputs.size(), " grad_outputs");
  for (std::size_t i = 0; i < outputs.size(); ++i)
    check(outputs[i].requires_grad(), "grad", "output ", i, " (shape ", outputs[i].shape(),
          ") does not require grad: it was not computed from a tensor with requires_grad under recording");
  for (std::size_t i = 0; i < inputs.size(); ++i)
    check(inputs[i].defined(), "grad", "input ", i, " is an undefined tensor");

  // 1. Discover the graph reachable from the outputs (iteratively).
  std::unordered_map<ImplPtr, Entry> entries;
  std::vector<ImplPtr> stack;
  entries.reserve(64);
  for (const auto& out : outputs) stack.push_back(detail::entry_for(entries, out.impl()).impl.get());
  std::vector<ImplPtr> order;
  // A path from an output to an input only visits tensors at least as new as that input, so
  // nothing older than every input can lead to one: the walk stops there. An unrolled inner loop
  // asks for the gradient w.r.t. the newest parameters, and then never visits the earlier steps.
  std::uint64_t oldest_input = std::numeric_limits<std::uint64_t>::max();
  for (const auto& in : inputs) oldest_input = std::min(oldest_input, in.impl()->sequence);
  while (!stack.empty()) {
    ImplPtr impl = stack.back();
    stack.pop_back();
    auto& entry = entries[impl];
    if (entry.discovered) continue;
    entry.discovered = true;
    order.push_back(impl);
    if (!impl->grad_fn) continue;
    for (const auto& in : impl->grad_fn->inputs()) {
      if (!in.requires_grad() || in.impl()->sequence < oldest_input) continue;
      auto& e = detail::entry_for(entries, in.impl());
      if (!e.discovered) stack.push_back(e.impl.get());
    }
  }

  // 2. Mark what leads to a requested input, in creation order (inputs are older than outputs).
  std::unordered_map<ImplPtr, std::size_t> target_of;
  for (std::size_t i = 0; i < inputs.size(); ++i) target_of.emplace(detail::entry_for(entries, inputs[i].impl()).impl.get(), i);
  std::sort(order.begin(), order.end(), [](ImplPtr a, ImplPtr b) { return a->sequence < b->sequence; });
  for (ImplPtr impl : order) {
    auto& e = entries[impl];
    e.needed = target_of.contains(impl);
    if (impl->grad_fn) {
      if (impl->grad_fn->released()) e.needed = true;  // walking it must fail loudly, below
      for (const auto& in : impl->grad_fn->inputs())
        if (in.requires_grad() && detail::entry_for(entries, in.impl()).needed) e.needed = true;
    }
  }

  // 3. Seed the output gradients and walk in decreasing creation order.
  GradModeGuard mode(options.create_graph);
  auto later = [](ImplPtr a, ImplPtr b) { return a->sequence < b->sequence; };
  std::priority_queue<ImplPtr, std::vector<ImplPtr>, decltype(later)> ready(later);
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    Tensor<T> seed = options.grad_outputs.empty() ? Tensor<T>() : options.grad_outputs[i];
    if (!seed.defined()) {
      check(outputs[i].numel() == 1, "grad", "output ", i, " has shape ", outputs[i].shape(),
            "; a grad_output is required for outputs with more than one element");
      seed = ones<T>(outputs[i].shape());
    }
    check(seed.shape() == outputs[i].shape(), "grad", "grad_output ", i, " has shape ", seed.shape(),
          " but output ", i, " has shape ", outputs[i].shape());
    auto& e = detail::entry_for(entries, outputs[i].impl());
    detail::accumulate(e, seed);
    if (!e.queued && e.needed) {
      e.queued = true;
      ready.push(e.impl.get());
    }
  }

  std::vector<Tensor<T>> results;
  std::vector<bool> wanted_storage;
  while (!ready.empty()) {
    ImplPtr impl = ready.top();
    ready.pop();
    auto& e = entries[impl];
    const auto& node = impl->grad_fn;
    if (!node) continue;
    if (node->released()) {
      if (target_of.contains(impl)) continue;
      fail("grad", "the graph behind op '", node->name(), "' (output shape ", impl->shape,
           ") was already freed by an earlier backward pass; pass retain_graph=true to walk it again");
    }
    const auto inputs_of_node = node->inputs();
    const std::size_t n = inputs_of_node.size();
    bool any = false;
    auto wanted = std::make_unique<bool[]>(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& in = inputs_of_node[i];
      wanted[i] = in.requires_grad() && detail::entry_for(entries, in.impl()).needed;
      any = any || wanted[i];
      check(in.version() == node->saved_version(i), "grad", "input ", i, " of op '", node->name(), "' (shape ",
            in.shape(), ") was modified in place after the op used it");
    }
    if (!any) continue;
    results.assign(n, Tensor<T>());
    {
      BackwardContext<T> ctx(inputs_of_node, Tensor<T>(e.impl), std::span<const bool>(wanted.get(), n), results);
      node->apply(e.grad, ctx);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!wanted[i] || !results[i].defined()) continue;
      const auto& in = inputs_of_node[i];
      check(results[i].shape() == in.shape(), "grad", "backward of op '", node->name(), "' produced a gradient of shape ",
            results[i].shape(), " for input ", i, " of shape ", in.shape(), " (internal error)");
      auto& ie = detail::entry_for(entries, in.impl());
      detail::accumulate(ie, std::move(results[i]));
      if (!ie.queued) {
        ie.queued = true;
        ready.push(ie.impl.get());
      }
    }
    // The output's own gradient is no longer needed unless it is a requested input.
    if (!target_of.contains(impl)) e.grad = Tensor<T>();
    if (!retain) node->release();
  }

  std::vector<Tensor<T>> grads(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& e = detail::entry_for(entries, inputs[i].impl());
    if (e.grad.defined()) {
      grads[i] = e.grad;
    } else {
      check(options.allow_unused, "grad", "input ", i, " (shape ", inputs[i].shape(),
            ") is not used to compute the outputs; pass allow_unused=true to get an undefined gradient");
    }
  }
  return grads;
}

template <Floating T>
std::vector<Tensor<T>> grad(const Tensor<T>& output, const std::vector<Tensor<T>>& inputs,
                            const GradOptions<T>& options = {}) {
  return grad<T>(std::span<const Tensor<T>>(&output, 1), std::span<const Tensor<T>>(inputs), options);
}

template <Floating T>
Tensor<T> grad(const Tensor<T>& output, const Tensor<T>& input, const GradOptions<T>& options = {}) {
  return grad<T>(std::span<const Tensor<T>>(&output, 1), std::span<const Tensor<T>>(&input, 1), options)[0];
}

/// Accumulates d(root)/d(leaf) into leaf.grad() for every leaf with requires_grad that root depends on.
template <Floating T>
void backward(const Tensor<T>& root, const Tensor<T>& grad_output = {}, bool retain_graph = false,
              bool create_graph = false) {
  check(root.requires_grad(), "backward", "tensor of shape ", root.shape(), " does not require grad");
  std::vector<Tensor<T>> leaves, stack{root};
  std::unordered_set<const TensorImpl<T>*> seen;
  while (!stack.empty()) {
    Tensor<T> t = std::move(stack.back());
    stack.pop_back();
    if (!seen.insert(t.impl().get()).second) continue;
    const auto& node = t.grad_fn();
    if (!node) {
      leaves.push_back(t);
      continue;
    }
    check(!node->released(), "backward", "the graph behind op '", node->name(),
          "' was already freed by an earlier backward pass; pass retain_graph=true to walk it again");
    for (const auto& in : node->inputs())
      if (in.requires_grad()) stack.push_back(in);
  }
  GradOptions<T> options;
  if (grad_output.defined()) options.grad_outputs = {grad_output};
  options.create_graph = create_graph;
  options.retain_graph = retain_graph || create_graph;
  // A leaf can be reachable yet receive no gradient: a ReLU network's input gradient reaches the
  // input only through ReLU's mask, which has none. Such a leaf keeps its .grad(), as in PyTorch.
  options.allow_unused = true;
  auto grads = grad<T>(std::span<const Tensor<T>>(&root, 1), std::span<const Tensor<T>>(leaves), options);
  GradModeGuard mode(create_graph);
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    if (!grads[i].defined()) continue;
    Tensor<T> g = create_graph ? grads[i] : grads[i].detach();
    Tensor<T> prev = leaves[i].grad();
    leaves[i].set_grad(prev.defined() ? add(prev, g) : g);
  }
}

}  // namespace metagrad
