// SPDX-License-Identifier: MIT
// Tensor<T>: a cheap handle (one shared_ptr) to shared storage + shape + offset. Always contiguous
// and row-major; reshape and detach share storage, every other op makes a new buffer. A floating
// tensor may carry a grad_fn (the node that made it), an accumulated .grad(), and a forward-mode
// tangent (autograd/forward.hpp), which every op propagates to its result.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "metagrad/core/device.hpp"
#include "metagrad/core/error.hpp"
#include "metagrad/core/scalar.hpp"
#include "metagrad/core/shape.hpp"
#include "metagrad/core/storage.hpp"

namespace metagrad {

template <Floating T>
class Node;

namespace detail {
inline std::uint64_t next_sequence_number() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed);
}

template <class T>
struct NodeOf {
  using type = void;
};
template <Floating T>
struct NodeOf<T> {
  using type = Node<T>;
};
}  // namespace detail

template <Element T>
class Tensor;

template <Element T>
struct TensorImpl {
  std::shared_ptr<Storage<T>> storage;
  Shape shape;
  std::int64_t offset = 0;
  Device device = Device::cpu();
  // Creation order: an op's output is always newer than its inputs, which gives the autograd
  // engine a topological order without recursion.
  std::uint64_t sequence = detail::next_sequence_number();
  bool requires_grad = false;
  std::shared_ptr<typename detail::NodeOf<T>::type> grad_fn;
  std::shared_ptr<TensorImpl> grad;
  // Forward mode: the directional derivative of this tensor (same shape), or null for zero.
  std::shared_ptr<TensorImpl> tangent;
  // A second handle to an op's output made for its tangent rule (autograd/node.hpp): it shares
  // the output's grad_fn, and the engine treats it as that output.
  bool output_alias = false;
};

template <Element T>
class Tensor {
 public:
  using value_type = T;
  using Impl = TensorImpl<T>;

  /// An undefined tensor (what grad() returns for an unused input with allow_unused).
  Tensor() = default;
  explicit Tensor(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

  /// A new, uninitialised contiguous tensor.
  static Tensor empty(const Shape& shape) {
    auto impl = std::make_shared<Impl>();
    impl->storage = std::make_shared<Storage<T>>(shape.numel());
    impl->shape = shape;
    return Tensor(std::move(impl));
  }

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return checked().shape; }
  int dim() const { return shape().rank(); }
  std::int64_t numel() const { return shape().numel(); }
  std::int64_t size(std::int64_t d) const { return shape()[normalize_dim(d, dim(), "Tensor::size")]; }
  Device device() const { return checked().device; }

  const T* data() const { return checked().storage->data() + impl_->offset; }
  /// Pointer for writing in place; bumps the storage version so stale saved tensors are detected.
  /// `op` names the in-place op in the error for a tensor with a forward-mode tangent: the write
  /// would change the value without changing the tangent, a silently wrong derivative.
  T* mutable_data(const char* op = "mutable_data") {
    check(!checked().tangent, op, "in-place op on a tensor of shape ", impl_->shape,
          " with a forward-mode tangent is not supported");
    impl_->storage->bump_version();
    return impl_->storage->data() + impl_->offset;
  }
  /// Pointer for filling a tensor an op has just created (no version bump: nothing saved it yet).
  T* fresh_data() { return checked().storage->data() + impl_->offset; }
  std::span<const T> values() const { return {data(), static_cast<std::size_t>(numel())}; }
  std::vector<T> to_vector() const { return {data(), data() + numel()}; }

  /// The single value of a one-element tensor.
  T item() const {
    check(numel() == 1, "item", "tensor of shape ", shape(), " has ", numel(), " elements, not 1");
    return data()[0];
  }
  /// Element at a multi-index, bounds-checked.
  T at(std::initializer_list<std::int64_t> index) const { return data()[flat_index(index)]; }
  template <std::integral... I>
  T operator()(I... index) const {
    return at({static_cast<std::int64_t>(index)...});
  }

  // ---- autograd state ----
  bool requires_grad() const { return defined() && impl_->requires_grad; }
  /// Marks a leaf as requiring grad (returns *this so it chains after creation).
  Tensor& requires_grad_(bool on = true) {
    static_assert(Floating<T>, "only floating tensors can require grad");
    check(!checked().grad_fn || on, "requires_grad_", "cannot turn off requires_grad of a non-leaf tensor of shape ",
          shape(), "; use detach()");
    impl_->requires_grad = on;
    return *this;
  }
  bool is_leaf() const { return !checked().grad_fn; }
  const auto& grad_fn() const { return checked().grad_fn; }
  /// The gradient accumulated by backward(); undefined until then.
  Tensor grad() const { return Tensor(checked().grad); }
  void set_grad(const Tensor& g) {
    if (g.defined())
      check(g.shape() == shape(), "set_grad", "gradient of shape ", g.shape(), " for a tensor of shape ", shape());
    checked().grad = g.impl_;
  }
  void zero_grad() { checked().grad.reset(); }

  /// The forward-mode tangent (see autograd/forward.hpp); undefined when there is none (zero).
  Tensor tangent() const { return Tensor(checked().tangent); }

  /// Same storage, no history and no tangent: the result is a leaf that does not require grad.
  Tensor detach() const {
    auto impl = std::make_shared<Impl>();
    impl->storage = checked().storage;
    impl->shape = impl_->shape;
    impl->offset = impl_->offset;
    impl->device = impl_->device;
    return Tensor(std::move(impl));
  }

  const std::shared_ptr<Impl>& impl() const { return impl_; }
  /// True when both handles refer to the same tensor (not the same values).
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  std::uint64_t version() const { return checked().storage->version(); }

 private:
  Impl& checked() const {
    if (!impl_) [[unlikely]]
      throw Error("Tensor: use of an undefined tensor");
    return *impl_;
  }
  std::int64_t flat_index(std::initializer_list<std::int64_t> index) const {
    check(static_cast<int>(index.size()) == dim(), "at", "index of rank ", index.size(), " for a tensor of shape ",
          shape());
    std::int64_t flat = 0;
    int d = 0;
    for (auto i : index) {
      check(i >= 0 && i < shape()[d], "at", "index ", i, " is out of range for dim ", d, " of shape ", shape());
      flat = flat * shape()[d] + i;
      ++d;
    }
    return flat;
  }

  std::shared_ptr<Impl> impl_;
};

using TensorF = Tensor<float>;
using TensorD = Tensor<double>;
using IndexTensor = Tensor<std::int64_t>;

}  // namespace metagrad
