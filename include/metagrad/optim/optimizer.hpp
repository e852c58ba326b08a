// SPDX-License-Identifier: MIT
// Optimizer: the base of the in-place optimizers (SGD, Adam, AdamW). It holds the parameters, the
// learning rate and each parameter's state; step() updates the parameters in place from the
// gradients backward() accumulated in .grad(), under no-grad and through mutable_data(), so a graph
// that saved a parameter before the step refuses to run backward afterwards instead of silently
// using the new values. The state is exposed as named tensors ("<index>.<field>") for checkpoints.
#pragma once
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/core/creation.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/nn/named_tensors.hpp"

namespace metagrad {

namespace detail {
inline void check_hyperparameter(bool ok, const char* op, const char* name, double value, const char* expected) {
  check(ok, op, name, " = ", value, " is invalid: it must be ", expected);
}
}  // namespace detail

template <Floating T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Optimizers hold per-parameter state keyed by position; copying one would alias that state.
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter that has a gradient; parameters without one are skipped and
  /// their state is left alone (as PyTorch does).
  void step() {
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const Tensor<T> g = params_[i].grad();
      if (!g.defined()) continue;
      check(g.shape() == params_[i].shape(), name_, "gradient of shape ", g.shape(), " for parameter ", i,
            " of shape ", params_[i].shape());
      // The in-place update would take the gradient's value and drop its tangent.
      check(!g.tangent().defined(), name_, "in-place op on parameter ", i, " of shape ", params_[i].shape(),
            " from a gradient with a forward-mode tangent is not supported");
      update(i, params_[i], g);
    }
  }

  /// Drops every parameter's accumulated gradient (the next backward starts from nothing).
  void zero_grad() {
    for (auto& p : params_) p.zero_grad();
  }

  double lr() const { return lr_; }
  void set_lr(double lr) {
    detail::check_hyperparameter(std::isfinite(lr) && lr >= 0, name_, "lr", lr, "finite and >= 0");
    lr_ = lr;
  }
  const std::vector<Tensor<T>>& params() const { return params_; }
  const char* name() const { return name_; }

  /// The per-parameter state as "<index>.<field>" entries: "<i>.step" (a one-element tensor, as
  /// PyTorch stores it: exact up to 2^24 steps in float, 2^53 in double) and the buffers, e.g.
  /// "<i>.exp_avg". Parameters that were never updated have no entries. The buffers are detached
  /// views of the live state: save or copy them before the next step.
  NamedTensors<T> state_dict() const {
    NamedTensors<T> out;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (!has_state(i)) continue;
      const std::string prefix = std::to_string(i) + ".";
      if (counts_steps_) out.insert(prefix + "step", scalar_tensor<T>(static_cast<T>(steps_[i])));
      for (std::size_t s = 0; s < buffer_names_.size(); ++s)
        out.insert(prefix + buffer_names_[s], buffers_[i][s].detach());
    }
    return out;
  }

  /// Checks `state` completely (keys, indices, shapes, step values), then replaces the whole state
  /// with copies of it; on any problem nothing changes and the error lists every problem.
  void load_state_dict(const NamedTensors<T>& state) {
    ParsedState parsed = parse_state(state);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      steps_[i] = parsed.steps[i];
      for (std::size_t s = 0; s < buffer_names_.size(); ++s) {
        const Tensor<T>& src = parsed.buffers[i][s];
        Tensor<T> copy;
        if (src.defined()) {
          copy = Tensor<T>::empty(src.shape());
          std::copy_n(src.data(), src.numel(), copy.fresh_data());
        }
        buffers_[i][s] = std::move(copy);
      }
    }
  }

  /// The checks of load_state_dict alone: throws on what it would refuse, changes nothing.
  void check_state_dict(const NamedTensors<T>& state) const { (void)parse_state(state); }

 protected:
  /// `buffer_names` are the per-parameter state tensors (each of the parameter's shape);
  /// `counts_steps` adds a per-parameter step count.
  Optimizer(const char* name, std::vector<Tensor<T>> params, double lr, std::vector<std::string> buffer_names,
            bool counts_steps)
      : name_(name), params_(std::move(params)), buffer_names_(std::move(buffer_names)), counts_steps_(counts_steps) {
    check(!params_.empty(), name_, "got an empty parameter list");
    std::unordered_set<const void*> seen;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto& p = params_[i];
      check(p.defined(), name_, "parameter ", i, " is an undefined tensor");
      check(p.is_leaf(), name_, "parameter ", i, " (shape ", p.shape(),
            ") is not a leaf: an optimizer updates leaves in place; optimize the tensor it was computed from");
      check(seen.insert(p.impl()->storage.get()).second, name_, "parameter ", i, " (shape ", p.shape(),
            ") shares its storage with an earlier parameter; each parameter may appear once");
    }
    set_lr(lr);
    buffers_.assign(params_.size(), std::vector<Tensor<T>>(buffer_names_.size()));
    steps_.assign(params_.size(), 0);
  }

  /// Updates parameter i in place from its gradient g (called under no-grad).
  virtual void update(std::size_t i, Tensor<T>& param, const Tensor<T>& g) = 0;

  /// State buffer `slot` of parameter i; undefined until the subclass creates it.
  Tensor<T>& buffer(std::size_t i, std::size_t slot) { return buffers_[i][slot]; }
  /// Number of updates parameter i has received (kept only when counts_steps).
  std::int64_t& step_count(std::size_t i) { return steps_[i]; }

 private:
  struct ParsedState {
    std::vector<std::vector<Tensor<T>>> buffers;
    std::vector<std::int64_t> steps;
  };

  ParsedState parse_state(const NamedTensors<T>& state) const {
    const std::size_t n = params_.size(), fields = buffer_names_.size() + (counts_steps_ ? 1 : 0);
    ParsedState out{std::vector<std::vector<Tensor<T>>>(n, std::vector<Tensor<T>>(buffer_names_.size())),
                    std::vector<std::int64_t>(n, 0)};
    std::vector<std::size_t> found(n, 0);
    std::string problems;
    auto report = [&](auto&&... parts) {
      problems += problems.empty() ? "" : "; ";
      problems += detail::concat(parts...);
    };
    for (const auto& [key, t] : state) {
      const auto dot = key.find('.');
      std::size_t index = n;
      const char* end = key.data() + (dot == std::string::npos ? 0 : dot);
      const auto parsed = std::from_chars(key.data(), end, index);
      if (dot == std::string::npos || parsed.ptr != end || parsed.ec != std::errc() || index >= n) {
        report("unexpected key '", key, "' (keys are '<parameter index>.<field>' with index < ", n, ")");
        continue;
      }
      const std::string_view field = std::string_view(key).substr(dot + 1);
      if (!t.defined()) {
        report("key '", key, "' holds an undefined tensor");
      } else if (counts_steps_ && field == "step") {
        const double v = t.numel() == 1 ? static_cast<double>(t.data()[0]) : -1.0;
        if (!(v >= 1 && v == std::floor(v) && v < 0x1p62)) {
          report("key '", key, "' must hold one positive whole number, got shape ", t.shape(),
                 t.numel() == 1 ? detail::concat(" value ", v) : std::string());
        } else {
          out.steps[index] = static_cast<std::int64_t>(v);
          ++found[index];
        }
      } else {
        std::size_t s = 0;
        while (s < buffer_names_.size() && buffer_names_[s] != field) ++s;
        if (s == buffer_names_.size()) {
          report("unexpected key '", key, "' (", name_, " has no state field '", field, "')");
        } else if (!(t.shape() == params_[index].shape())) {
          report("shape mismatch for '", key, "': state has ", t.shape(), ", parameter ", index, " has ",
                 params_[index].shape());
        } else {
          out.buffers[index][s] = t;
          ++found[index];
        }
      }
    }
    for (std::size_t i = 0; i < n; ++i)
      if (found[i] != 0 && found[i] != fields)
        report("parameter ", i, " has ", found[i], " of its ", fields, " state entries; a state is all or nothing");
    check(problems.empty(), name_, "load_state_dict: ", problems);
    return out;
  }

  bool has_state(std::size_t i) const {
    if (counts_steps_) return steps_[i] > 0;
    for (const auto& b : buffers_[i])
      if (b.defined()) return true;
    return false;
  }

  const char* name_;
  std::vector<Tensor<T>> params_;
  double lr_ = 0;
  std::vector<std::string> buffer_names_;
  bool counts_steps_;
  std::vector<std::vector<Tensor<T>>> buffers_;
  std::vector<std::int64_t> steps_;
};

}  // namespace metagrad
