// SPDX-License-Identifier: MIT
// Contextual decomposition of an LSTM (Murdoch, Liu & Yu, ICLR 2018) and of a text classifier
// built on one (Embedding → LSTM → last hidden state → head). The hidden state h_t and the cell
// c_t are carried as two parts, rel (what the tokens at the chosen positions explain) and irrel,
// with rel + irrel equal to the LSTM's own h_t and c_t at every step:
//  - each gate's pre-activation is W·rel + W·irrel + bias (the input's parts from the token mask,
//    the recurrent parts from the previous step), and a gate σ(a + b + c) is split three ways as
//    in the paper: a's and b's contributions are the averages of their effects added first and
//    last (Shapley values of two players on top of the bias c), and σ(c) is the bias's part;
//  - the cell update i·g + f·c_{t−1} is expanded over those parts: a product of a rel part with a
//    rel or bias part is rel, anything touching an irrel part is irrel, and the bias-by-bias
//    product σ(c_i)·tanh(c_g) goes to rel exactly at the positions in the mask;
//  - h_t = o ⊙ tanh(c_t): tanh is split between the two parts of c_t by the same two-player
//    Shapley rule (tanh(0) = 0 leaves no bias part), and the output gate o multiplies both whole.
// With an all-ones mask irrel stays exactly zero through the LSTM (and an all-zeros mask leaves
// rel zero); the head's bias is then split in proportion as everywhere in explain/cd.hpp, which
// keeps rel + irrel = logits exact. Every rule is made of ops, so the scores differentiate.
// The recurrence starts from the zero state. `lengths` ends each sequence at its last real token
// as LSTM::forward does.
// Precision: the forget gate gives the rel cell part the factor rf + σ(b_f), which can exceed 1,
// while the irrel part cancels the excess; over long sequences the two parts of c_t can grow
// geometrically with a bounded sum. Run long sequences in double (on 128-token emails, float left
// |rel + irrel − logits| up to 3; double 1e-6), and expect single positions to reach saturated
// scores there (examples/11_cd_text_lstm, docs/results.md).
#pragma once
#include <concepts>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "metagrad/explain/cd.hpp"
#include "metagrad/nn/embedding.hpp"
#include "metagrad/nn/recurrent.hpp"

namespace metagrad {

/// The CD of an LSTM's outputs: every step's h of the last layer (in the LSTM's layout) and the
/// last layer's final h ([N, H], at each sequence's last real token when lengths are given).
template <Floating T>
struct LstmDecomposition {
  Decomposition<T> output;
  Decomposition<T> last;
};

namespace detail {

/// The paper's three-way split of act(a + b + c): {a's part, b's part, act(c)}, summing to it.
template <Floating T, class F>
std::vector<Tensor<T>> split_three(const Tensor<T>& a, const Tensor<T>& b, const Tensor<T>& c, F&& act) {
  const auto ac = act(add(a, c)), bc = act(add(b, c)), abc = act(add(add(a, b), c)), c0 = act(c);
  return {mul(add(sub(ac, c0), sub(abc, bc)), T(0.5)), mul(add(sub(bc, c0), sub(abc, ac)), T(0.5)),
          broadcast_to(c0, a.shape())};
}

}  // namespace detail

/// CD of `lstm` on an input given as two parts (each shaped like the LSTM's input). The token
/// mask `positions` [N, T] (1: the position is in the set, 0: not; constant) says where the
/// bias-only product of the input and candidate gates counts as rel, as the paper assigns it.
/// For a 0/1 token mask, pass input = {mask ⊙ x, (1 − mask) ⊙ x}.
template <Floating T>
LstmDecomposition<T> cd_lstm(nn::LSTM<T>& lstm, const Decomposition<T>& input, const Tensor<T>& positions,
                             const IndexTensor& lengths = {}) {
  constexpr const char* op = "cd_lstm";
  check(input.rel.defined() && input.irrel.defined(), op, "both input parts must be defined");
  check(input.rel.shape() == input.irrel.shape(), op, "the two input parts must have one shape, got ",
        input.rel.shape(), " and ", input.irrel.shape());
  Tensor<T> rel_in = lstm.time_major(input.rel, op), irrel_in = lstm.time_major(input.irrel, op);
  const std::int64_t steps = rel_in.size(0), n = rel_in.size(1), h = lstm.hidden_size();
  check(positions.defined() && positions.shape() == Shape({n, steps}), op, "the position mask ",
        positions.defined() ? positions.shape().str() : "(undefined)", " must be [N, T] = [", n, ", ", steps, "]");
  if (lengths.defined()) nn::recurrent_detail::check_lengths(lengths, n, steps, op);
  const auto running = lengths.defined() ? nn::recurrent_detail::running_masks<T>(lengths, steps) : std::vector<Tensor<T>>{};
  const auto in_set = unbind(unsqueeze(transpose(positions.detach(), 0, 1), 2), 0);  // T × [N, 1]
  auto sig = [](const Tensor<T>& t) { return sigmoid(t); };
  auto th = [](const Tensor<T>& t) { return tanh(t); };
  auto gate = [h](const Tensor<T>& t, std::int64_t k) { return slice(t, -1, k * h, (k + 1) * h); };
  Decomposition<T> last;
  for (std::int64_t l = 0; l < lstm.num_layers(); ++l) {
    const auto li = static_cast<std::size_t>(l);
    const auto& w_hh = lstm.weight_hh[li];
    const auto bias = lstm.has_bias() ? lstm.combined_bias(li) : zeros<T>(Shape{4 * h});
    const auto rel_x = nn::recurrent_detail::time_steps(linear(rel_in, lstm.weight_ih[li]));
    const auto irrel_x = nn::recurrent_detail::time_steps(linear(irrel_in, lstm.weight_ih[li]));
    Decomposition<T> hs{zeros<T>(Shape{n, h}), zeros<T>(Shape{n, h})}, cs = hs;
    std::vector<Tensor<T>> rel_out, irrel_out;
    for (std::int64_t t = 0; t < steps; ++t) {
      const auto ti = static_cast<std::size_t>(t);
      const auto a = add(rel_x[ti], mm(hs.rel, w_hh, false, true));
      const auto b = add(irrel_x[ti], mm(hs.irrel, w_hh, false, true));
      const auto gi = detail::split_three(gate(a, 0), gate(b, 0), gate(bias, 0), sig);
      const auto gf = detail::split_three(gate(a, 1), gate(b, 1), gate(bias, 1), sig);
      const auto gg = detail::split_three(gate(a, 2), gate(b, 2), gate(bias, 2), th);
      const auto o = sigmoid(add(add(gate(a, 3), gate(b, 3)), gate(bias, 3)));
      const auto f = add(add(gf[0], gf[1]), gf[2]);
      const auto bias_product = mul(gi[2], gg[2]);
      const auto& m = in_set[ti];
      // rel: rel·(rel + bias) and bias·rel terms, the bias product inside the set, rel memory kept by rel and bias forget parts.
      Decomposition<T> c_new{
          add(add(add(mul(gi[0], add(gg[0], gg[2])), mul(gi[2], gg[0])), mul(bias_product, m)),
              mul(add(gf[0], gf[2]), cs.rel)),
          add(add(add(mul(gi[1], add(add(gg[0], gg[1]), gg[2])), mul(add(gi[0], gi[2]), gg[1])),
                  mul(bias_product, sub(T(1), m))),
              add(mul(f, cs.irrel), mul(gf[1], cs.rel)))};
      const auto tanh_c = detail::split_monotone(c_new, th);
      Decomposition<T> h_new{mul(o, tanh_c.rel), mul(o, tanh_c.irrel)};
      if (!running.empty()) {
        const auto& r = running[ti];
        auto advance = [&r](const Tensor<T>& old, const Tensor<T>& now) { return add(old, mul(sub(now, old), r)); };
        rel_out.push_back(mul(h_new.rel, r));
        irrel_out.push_back(mul(h_new.irrel, r));
        cs = Decomposition<T>{advance(cs.rel, c_new.rel), advance(cs.irrel, c_new.irrel)};
        hs = Decomposition<T>{advance(hs.rel, h_new.rel), advance(hs.irrel, h_new.irrel)};
      } else {
        rel_out.push_back(h_new.rel);
        irrel_out.push_back(h_new.irrel);
        cs = std::move(c_new);
        hs = std::move(h_new);
      }
    }
    rel_in = stack(rel_out, 0);
    irrel_in = stack(irrel_out, 0);
    last = hs;
  }
  if (lstm.batch_first()) return {{transpose(rel_in, 0, 1), transpose(irrel_in, 0, 1)}, last};
  return {{rel_in, irrel_in}, last};
}

/// A text classifier CD can walk: an nn::Embedding `embedding`, an nn::LSTM `lstm` with
/// batch_first, and a `head` (a layer or layer-wise model, explain/layers.hpp) applied to the last
/// layer's final h; nn::LSTMTextClassifier is one.
template <class M, class T>
concept EmbeddingLstmModel = requires(M& m) {
  { m.embedding } -> std::convertible_to<nn::Embedding<T>&>;
  { m.lstm } -> std::convertible_to<nn::LSTM<T>&>;
  requires LayerwiseModel<std::remove_reference_t<decltype(m.head)>, T>;
};

/// CD scores of a text classifier for sets of token positions: ids [N, T] (one row per set; repeat
/// a document's row to score several sets in one call), positions [N, T] (1 on the tokens of the
/// set), lengths [N] (optional, each row's real tokens). Returns the head's output in two parts
/// with rel + irrel = model logits; rel is the set's CD score.
template <Floating T, class M>
  requires EmbeddingLstmModel<M, T>
Decomposition<T> contextual_decomposition_text(M& model, const IndexTensor& ids, const Tensor<T>& positions,
                                               const IndexTensor& lengths = {}) {
  check(model.lstm.batch_first(), "contextual_decomposition_text", "needs an LSTM with batch_first (ids are [N, T])");
  check(ids.dim() == 2 && positions.defined() && positions.shape() == ids.shape(), "contextual_decomposition_text",
        "ids ", ids.shape(), " and positions ", positions.defined() ? positions.shape().str() : "(undefined)",
        " must both be [N, T]");
  const auto x = model.embedding(ids);
  const auto m = unsqueeze(positions.detach(), 2);
  const auto lstm = cd_lstm(model.lstm, Decomposition<T>{mul(x, m), mul(x, sub(T(1), m))}, positions, lengths);
  Decomposition<T> out = lstm.last;
  for (nn::Layer<T>* layer : detail::flatten_layers<T>(model.head)) out = cd_layer(*layer, out);
  return out;
}

}  // namespace metagrad
