// SPDX-License-Identifier: MIT
// Recurrent layers with torch's semantics and parameter names, built from differentiable ops so
// any order of gradient comes free.
//  - LSTM (torch.nn.LSTM): weight_ih_l{k} [4H, in], weight_hh_l{k} [4H, H], bias_ih_l{k} and
//    bias_hh_l{k} [4H], gates stacked in the order i, f, g, o.
//  - GRU (torch.nn.GRU): the same names with 3H rows for r, z, n; n = tanh(W_in x + b_in +
//    r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h.
// Every parameter is U(−1/√H, 1/√H). Per layer the input projection of all time steps is one
// matmul up front, and each step is one [N, H] × [H, G·H] matmul for all gates. Variable-length
// batches: `lengths` [N] stops each sequence at its own last real token, as torch's packed
// sequences do (the final states are the states there, and the output is zero after it).
// Not supported: dropout between layers, proj_size, bidirectional, unbatched (2-D) input.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "metagrad/nn/init.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad::nn {

/// The recurrent state of every layer: h and c, each [num_layers, N, H].
template <Floating T = float>
struct LSTMState {
  Tensor<T> h, c;
};

/// What LSTM::forward returns: the last layer's h at every step ([T, N, H], or [N, T, H] with
/// batch_first) and the final state of every layer.
template <Floating T = float>
struct LSTMResult {
  Tensor<T> output;
  LSTMState<T> state;
};

/// Options of LSTM and GRU (torch's keyword arguments of the same names).
struct LSTMOptions {
  std::int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;
};

// Not nn::detail: a namespace of that name would capture the unqualified `detail::` calls that
// nn/conv.hpp and nn/module.hpp make to metagrad::detail in any file that includes this one first.
namespace recurrent_detail {

/// The T slices x[t] along dim 0, taken in blocks of about √T first: a slice's backward is a
/// zero-padded tensor of the sliced tensor's full size, so T slices of [T, ...] directly would
/// cost O(T²) in the backward pass; through blocks it is O(T^1.5).
template <Floating T>
std::vector<Tensor<T>> time_steps(const Tensor<T>& x) {
  const std::int64_t steps = x.size(0);
  const auto block = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::sqrt(static_cast<double>(steps))));
  std::vector<Tensor<T>> out;
  out.reserve(static_cast<std::size_t>(steps));
  for (std::int64_t t0 = 0; t0 < steps; t0 += block) {
    const auto part = block >= steps ? x : slice(x, 0, t0, std::min(steps, t0 + block));
    for (std::int64_t t = 0; t < part.size(0); ++t) out.push_back(select(part, 0, t));
  }
  return out;
}

/// Per step t, a [N, 1] column that is 1 where t < lengths[n]: whether sequence n is still running.
template <Floating T>
std::vector<Tensor<T>> running_masks(const IndexTensor& lengths, std::int64_t steps) {
  const std::int64_t n = lengths.numel();
  std::vector<Tensor<T>> out;
  for (std::int64_t t = 0; t < steps; ++t) {
    auto m = Tensor<T>::empty(Shape{n, 1});
    T* p = m.fresh_data();
    for (std::int64_t i = 0; i < n; ++i) p[i] = lengths.data()[i] > t ? T(1) : T(0);
    out.push_back(std::move(m));
  }
  return out;
}

inline void check_lengths(const IndexTensor& lengths, std::int64_t batch, std::int64_t steps, const char* op) {
  check(lengths.dim() == 1 && lengths.size(0) == batch, op, "lengths of shape ", lengths.shape(),
        " must be [N] = [", batch, "]");
  for (std::int64_t i = 0; i < batch; ++i)
    check(lengths.data()[i] >= 1 && lengths.data()[i] <= steps, op, "lengths[", i, "] = ", lengths.data()[i],
          " is outside [1, ", steps, "] (the sequence length)");
}

}  // namespace recurrent_detail

/// What LSTM and GRU share (torch's RNNBase): per layer the stacked gate weights weight_ih_l{k}
/// [G·H, in], weight_hh_l{k} [G·H, H] and biases bias_ih_l{k}, bias_hh_l{k} [G·H] for G gates, all
/// drawn U(−1/√H, 1/√H); the input checks; and the loop over layers and steps with lengths.
template <Floating T>
class RecurrentBase : public Module<T> {
 public:
  std::int64_t input_size() const { return weight_ih[0].size(1); }
  std::int64_t hidden_size() const { return weight_hh[0].size(1); }
  std::int64_t num_layers() const { return options_.num_layers; }
  bool batch_first() const { return options_.batch_first; }
  bool has_bias() const { return options_.bias; }

  /// x as [T, N, input_size], checked; `op` names the caller in errors.
  Tensor<T> time_major(const Tensor<T>& x, const char* op) const {
    check(x.dim() == 3 && x.size(2) == input_size() && x.size(0) > 0 && x.size(1) > 0, op, "input ", x.shape(),
          " is not ", options_.batch_first ? "[N, T, " : "[T, N, ", input_size(),
          "] (batch_first = ", options_.batch_first ? "true" : "false", ", T and N at least 1)");
    return options_.batch_first ? transpose(x, 0, 1) : x;
  }

  std::vector<Tensor<T>> weight_ih, weight_hh, bias_ih, bias_hh;  // per layer

 protected:
  RecurrentBase(const char* op, std::int64_t gates, std::int64_t input_size, std::int64_t hidden_size, Generator& gen,
                LSTMOptions options)
      : op_(op), options_(options) {
    check(input_size > 0 && hidden_size > 0 && options.num_layers > 0, op,
          "input_size, hidden_size and num_layers must be positive, got ", input_size, ", ", hidden_size, " and ",
          options.num_layers);
    const auto layers = static_cast<std::size_t>(options.num_layers);
    // Sized once: the module registers the members by address.
    weight_ih.resize(layers);
    weight_hh.resize(layers);
    bias_ih.resize(layers);
    bias_hh.resize(layers);
    const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    auto make = [&](Tensor<T>& slot, const std::string& name, Shape shape) {
      slot = Tensor<T>::empty(shape);
      init::uniform_(slot, gen, -bound, bound);
      this->register_parameter(name, slot);
    };
    for (std::size_t l = 0; l < layers; ++l) {
      const std::string k = "_l" + std::to_string(l);
      make(weight_ih[l], "weight_ih" + k, Shape{gates * hidden_size, l == 0 ? input_size : hidden_size});
      make(weight_hh[l], "weight_hh" + k, Shape{gates * hidden_size, hidden_size});
      if (options.bias) {
        make(bias_ih[l], "bias_ih" + k, Shape{gates * hidden_size});
        make(bias_hh[l], "bias_hh" + k, Shape{gates * hidden_size});
      }
    }
  }

  /// Runs every layer over x (checked) from `initial` (one tensor per state kind: h, or h and c;
  /// each undefined or [num_layers, N, H]). cell(layer, projected input x_t·W_ihᵀ (+ input_bias(l)),
  /// states) returns the new states, h first. Returns the output (time-major) and the final states.
  template <class Cell, class InputBias>
  std::pair<Tensor<T>, std::vector<Tensor<T>>> run(const Tensor<T>& x, const std::vector<Tensor<T>>& initial,
                                                   const std::vector<const char*>& state_names,
                                                   const IndexTensor& lengths, InputBias&& input_bias, Cell&& cell) {
    const auto xt = time_major(x, op_);
    const std::int64_t steps = xt.size(0), n = xt.size(1);
    const Shape want{num_layers(), n, hidden_size()};
    for (std::size_t k = 0; k < initial.size(); ++k)
      if (initial[k].defined())
        check(initial[k].shape() == want, op_, state_names[k], " ", initial[k].shape(),
              " must be [num_layers, N, H] = ", want);
    if (lengths.defined()) recurrent_detail::check_lengths(lengths, n, steps, op_);
    const auto running = lengths.defined() ? recurrent_detail::running_masks<T>(lengths, steps) : std::vector<Tensor<T>>{};
    Tensor<T> layer_input = xt;
    std::vector<std::vector<Tensor<T>>> finals(initial.size());
    for (std::int64_t l = 0; l < num_layers(); ++l) {
      std::vector<Tensor<T>> states;
      for (const auto& s : initial) states.push_back(s.defined() ? select(s, 0, l) : zeros<T>(Shape{n, hidden_size()}));
      // The input projection of every step in one matmul.
      const auto projected = recurrent_detail::time_steps(linear(layer_input, weight_ih[static_cast<std::size_t>(l)], input_bias(l)));
      std::vector<Tensor<T>> outputs;
      outputs.reserve(static_cast<std::size_t>(steps));
      for (std::int64_t t = 0; t < steps; ++t) {
        auto next = cell(static_cast<std::size_t>(l), projected[static_cast<std::size_t>(t)], states);
        if (!running.empty()) {
          // A finished sequence keeps its state and outputs zeros, as a packed sequence does.
          const auto& m = running[static_cast<std::size_t>(t)];
          outputs.push_back(mul(next[0], m));
          for (std::size_t k = 0; k < states.size(); ++k) states[k] = add(states[k], mul(sub(next[k], states[k]), m));
        } else {
          outputs.push_back(next[0]);
          states = std::move(next);
        }
      }
      layer_input = stack(outputs, 0);
      for (std::size_t k = 0; k < states.size(); ++k) finals[k].push_back(states[k]);
    }
    std::vector<Tensor<T>> out;
    for (const auto& f : finals) out.push_back(stack(f, 0));
    return {options_.batch_first ? transpose(layer_input, 0, 1) : layer_input, std::move(out)};
  }

  const char* op_;
  LSTMOptions options_;
};

template <Floating T = float>
class LSTM final : public RecurrentBase<T> {
 public:
  LSTM(std::int64_t input_size, std::int64_t hidden_size, Generator& gen, LSTMOptions options = {})
      : RecurrentBase<T>("LSTM", 4, input_size, hidden_size, gen, options) {}
  LSTM(std::int64_t input_size, std::int64_t hidden_size, LSTMOptions options = {})
      : LSTM(input_size, hidden_size, default_generator(), options) {}

  /// x [T, N, input_size] ([N, T, input_size] with batch_first); `initial` (h0, c0), each
  /// [num_layers, N, H], zeros when undefined; `lengths` [N] in [1, T], every sequence T long
  /// when undefined.
  LSTMResult<T> forward(const Tensor<T>& x, const LSTMState<T>& initial = {}, const IndexTensor& lengths = {}) {
    check(initial.h.defined() == initial.c.defined(), "LSTM", "give both h0 and c0 or neither");
    const std::int64_t h = this->hidden_size();
    auto [output, states] = this->run(
        x, {initial.h, initial.c}, {"h0", "c0"}, lengths, [this](std::int64_t l) { return combined_bias(static_cast<std::size_t>(l)); },
        [&](std::size_t l, const Tensor<T>& projected, const std::vector<Tensor<T>>& hc) {
          const auto gates = add(projected, mm(hc[0], this->weight_hh[l], false, true));
          const auto i = sigmoid(slice(gates, 1, 0, h)), f = sigmoid(slice(gates, 1, h, 2 * h));
          const auto g = tanh(slice(gates, 1, 2 * h, 3 * h)), o = sigmoid(slice(gates, 1, 3 * h, 4 * h));
          const auto c = add(mul(f, hc[1]), mul(i, g));
          return std::vector<Tensor<T>>{mul(o, tanh(c)), c};
        });
    return {std::move(output), {std::move(states[0]), std::move(states[1])}};
  }
  LSTMResult<T> operator()(const Tensor<T>& x, const LSTMState<T>& initial = {}, const IndexTensor& lengths = {}) {
    return forward(x, initial, lengths);
  }

  /// bias_ih + bias_hh of layer l (both join the input projection); undefined without bias.
  Tensor<T> combined_bias(std::size_t l) const {
    return this->has_bias() ? add(this->bias_ih[l], this->bias_hh[l]) : Tensor<T>();
  }
};

/// What GRU::forward returns: the last layer's h at every step and h_n [num_layers, N, H].
template <Floating T = float>
struct GRUResult {
  Tensor<T> output;
  Tensor<T> h_n;
};

template <Floating T = float>
class GRU final : public RecurrentBase<T> {
 public:
  GRU(std::int64_t input_size, std::int64_t hidden_size, Generator& gen, LSTMOptions options = {})
      : RecurrentBase<T>("GRU", 3, input_size, hidden_size, gen, options) {}
  GRU(std::int64_t input_size, std::int64_t hidden_size, LSTMOptions options = {})
      : GRU(input_size, hidden_size, default_generator(), options) {}

  /// As LSTM::forward, with one state h0 [num_layers, N, H].
  GRUResult<T> forward(const Tensor<T>& x, const Tensor<T>& h0 = {}, const IndexTensor& lengths = {}) {
    const std::int64_t h = this->hidden_size();
    auto [output, states] = this->run(
        x, {h0}, {"h0"}, lengths,
        [this](std::int64_t l) { return this->has_bias() ? this->bias_ih[static_cast<std::size_t>(l)] : Tensor<T>(); },
        [&](std::size_t l, const Tensor<T>& projected, const std::vector<Tensor<T>>& hs) {
          // b_hn stays inside r ⊙ (W_hn h + b_hn), so the recurrent bias is not folded into the input.
          const auto rec = linear(hs[0], this->weight_hh[l], this->has_bias() ? this->bias_hh[l] : Tensor<T>());
          const auto r = sigmoid(add(slice(projected, 1, 0, h), slice(rec, 1, 0, h)));
          const auto z = sigmoid(add(slice(projected, 1, h, 2 * h), slice(rec, 1, h, 2 * h)));
          const auto n = tanh(add(slice(projected, 1, 2 * h, 3 * h), mul(r, slice(rec, 1, 2 * h, 3 * h))));
          return std::vector<Tensor<T>>{add(n, mul(z, sub(hs[0], n)))};
        });
    return {std::move(output), std::move(states[0])};
  }
  GRUResult<T> operator()(const Tensor<T>& x, const Tensor<T>& h0 = {}, const IndexTensor& lengths = {}) {
    return forward(x, h0, lengths);
  }
};

}  // namespace metagrad::nn
