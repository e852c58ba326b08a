// SPDX-License-Identifier: MIT
#include <cmath>
#include <utility>
#include <vector>

#include "metagrad/explain/cd_lstm.hpp"
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/nn/functional_call.hpp"
#include "metagrad/nn/lstm_classifier.hpp"
#include "metagrad/ops/reduction.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

namespace cd_lstm_test {

inline double sig(double v) { return 1.0 / (1.0 + std::exp(-v)); }

inline nn::LSTMTextClassifier<double> make_model(Generator& gen, std::int64_t layers = 1) {
  return nn::LSTMTextClassifier<double>({.vocab_size = 9, .embedding_dim = 3, .hidden_size = 5, .num_layers = layers},
                                        gen);
}

/// ids [N, T] with random tokens, masks [N, T] of random 0/1, lengths in [1, T].
struct Batch {
  IndexTensor ids, lengths;
  Tensor<double> masks;
};
inline Batch random_batch(std::int64_t n, std::int64_t t, Generator& gen) {
  Batch b{randint(0, 9, Shape{n, t}, gen), randint(1, t + 1, Shape{n}, gen), zeros<double>(Shape{n, t})};
  const auto bits = randint(0, 2, Shape{n, t}, gen);
  for (std::int64_t i = 0; i < n * t; ++i) b.masks.mutable_data()[i] = static_cast<double>(bits.data()[i]);
  return b;
}

/// The paper's algorithm (cd_text with propagate_three and propagate_tanh_two) written out in
/// scalar loops for one sequence x [T][E] and the set of positions `in_set`: rel and irrel of h_T.
inline std::pair<std::vector<double>, std::vector<double>> reference_cd(const nn::LSTM<double>& lstm,
                                                                       const std::vector<std::vector<double>>& x,
                                                                       const std::vector<bool>& in_set) {
  const std::int64_t h = lstm.hidden_size(), e = lstm.input_size();
  const double* wi = lstm.weight_ih[0].data();
  const double* wh = lstm.weight_hh[0].data();
  const double* bi = lstm.bias_ih[0].data();
  const double* bh = lstm.bias_hh[0].data();
  std::vector<double> rel_h(h, 0), irrel_h(h, 0), rel_c(h, 0), irrel_c(h, 0);
  auto three = [](double a, double b, double c, auto act) {
    return std::vector<double>{0.5 * (act(a + c) - act(c) + act(a + b + c) - act(b + c)),
                               0.5 * (act(b + c) - act(c) + act(a + b + c) - act(a + c)), act(c)};
  };
  auto th = [](double v) { return std::tanh(v); };
  for (std::size_t t = 0; t < x.size(); ++t) {
    std::vector<double> new_rel_h(h), new_irrel_h(h), new_rel_c(h), new_irrel_c(h);
    for (std::int64_t k = 0; k < h; ++k) {
      double a[4], b[4], c[4];
      for (int g = 0; g < 4; ++g) {
        const std::int64_t row = g * h + k;
        double wx = 0, rr = 0, ri = 0;
        for (std::int64_t j = 0; j < e; ++j) wx += wi[row * e + j] * x[t][j];
        for (std::int64_t j = 0; j < h; ++j) {
          rr += wh[row * h + j] * rel_h[j];
          ri += wh[row * h + j] * irrel_h[j];
        }
        a[g] = rr + (in_set[t] ? wx : 0.0);
        b[g] = ri + (in_set[t] ? 0.0 : wx);
        c[g] = bi[row] + bh[row];
      }
      const auto i = three(a[0], b[0], c[0], sig), f = three(a[1], b[1], c[1], sig), g = three(a[2], b[2], c[2], th);
      const double o = sig(a[3] + b[3] + c[3]);
      double rc = i[0] * (g[0] + g[2]) + i[2] * g[0] + (f[0] + f[2]) * rel_c[k];
      double ic = i[1] * (g[0] + g[1] + g[2]) + (i[0] + i[2]) * g[1] + (f[0] + f[1] + f[2]) * irrel_c[k] +
                  f[1] * rel_c[k];
      (in_set[t] ? rc : ic) += i[2] * g[2];
      new_rel_c[k] = rc;
      new_irrel_c[k] = ic;
      new_rel_h[k] = o * 0.5 * (std::tanh(rc) + std::tanh(rc + ic) - std::tanh(ic));
      new_irrel_h[k] = o * 0.5 * (std::tanh(ic) + std::tanh(rc + ic) - std::tanh(rc));
    }
    rel_h = new_rel_h;
    irrel_h = new_irrel_h;
    rel_c = new_rel_c;
    irrel_c = new_irrel_c;
  }
  return {rel_h, irrel_h};
}

}  // namespace cd_lstm_test

TEST_SUITE("explain.cd_lstm") {
  TEST_CASE("cd_lstm: rel + irrel equals the logits (double; 2 layers, lengths, random masks)") {
    Generator gen(1);
    for (std::int64_t layers : {1, 2}) {
      auto model = cd_lstm_test::make_model(gen, layers);
      const auto b = cd_lstm_test::random_batch(6, 7, gen);
      const auto cd = contextual_decomposition_text(model, b.ids, b.masks, b.lengths);
      CHECK(allclose(cd.total(), model(b.ids, b.lengths), 1e-13, 1e-13));
      const auto lstm = cd_lstm(model.lstm, {model.embedding(b.ids), zeros<double>(Shape{6, 7, 3})}, b.masks, b.lengths);
      const auto run = model.lstm(model.embedding(b.ids), {}, b.lengths);
      CHECK(allclose(lstm.output.total(), run.output, 1e-13, 1e-13));
      CHECK(allclose(lstm.last.total(), select(run.state.h, 0, layers - 1), 1e-13, 1e-13));
    }
  }

  TEST_CASE("cd_lstm: an all-ones mask leaves irrel zero, an all-zeros mask leaves rel zero") {
    Generator gen(2);
    auto model = cd_lstm_test::make_model(gen, 2);
    const auto b = cd_lstm_test::random_batch(4, 6, gen);
    const auto x = model.embedding(b.ids);
    const auto all = cd_lstm(model.lstm, {x, zeros_like(x)}, ones<double>(Shape{4, 6}), b.lengths);
    CHECK(metagrad::testing::same(all.last.irrel, zeros<double>(Shape{4, 5})));
    CHECK(metagrad::testing::same(all.output.irrel, zeros<double>(Shape{4, 6, 5})));
    const auto none = cd_lstm(model.lstm, {zeros_like(x), x}, zeros<double>(Shape{4, 6}), b.lengths);
    CHECK(metagrad::testing::same(none.last.rel, zeros<double>(Shape{4, 5})));
    // Through the head only the proportional bias split (explain/cd.hpp) puts ~1e-20 of the bias on irrel.
    const auto logits = contextual_decomposition_text(model, b.ids, ones<double>(Shape{4, 6}), b.lengths);
    CHECK(amax(abs(logits.irrel)).item() < 1e-15);
  }

  TEST_CASE("cd_lstm: one step of a one-unit LSTM matches the paper's formulas by hand") {
    Generator gen(3);
    nn::LSTM<double> lstm(2, 1, gen, {.batch_first = true});
    const double* w = lstm.weight_ih[0].data();
    const double* bi = lstm.bias_ih[0].data();
    const double* bh = lstm.bias_hh[0].data();
    const double x0 = 0.9, x1 = -1.4;
    // rel is the first input feature, irrel the second.
    const auto rel = from_vector<double>({x0, 0.0}, Shape{1, 1, 2}), irrel = from_vector<double>({0.0, x1}, Shape{1, 1, 2});
    for (double m : {0.0, 1.0}) {
      auto a = [&](int k) { return w[2 * k] * x0; };
      auto b = [&](int k) { return w[2 * k + 1] * x1; };
      auto c = [&](int k) { return bi[k] + bh[k]; };
      auto three = [&](int k, auto act) {
        const double ac = act(a(k) + c(k)), bc = act(b(k) + c(k)), abc = act(a(k) + b(k) + c(k)), c0 = act(c(k));
        return std::vector<double>{0.5 * (ac - c0 + abc - bc), 0.5 * (bc - c0 + abc - ac), c0};
      };
      const auto i = three(0, cd_lstm_test::sig);
      const auto g = three(2, [](double v) { return std::tanh(v); });
      const double o = cd_lstm_test::sig(a(3) + b(3) + c(3));
      const double rel_c = i[0] * (g[0] + g[2]) + i[2] * g[0] + m * i[2] * g[2];
      const double irrel_c = i[1] * (g[0] + g[1] + g[2]) + (i[0] + i[2]) * g[1] + (1 - m) * i[2] * g[2];
      const double rel_h = o * 0.5 * (std::tanh(rel_c) + std::tanh(rel_c + irrel_c) - std::tanh(irrel_c));
      const double irrel_h = o * 0.5 * (std::tanh(irrel_c) + std::tanh(rel_c + irrel_c) - std::tanh(rel_c));
      const auto cd = cd_lstm(lstm, {rel, irrel}, full<double>(Shape{1, 1}, m));
      CHECK(cd.last.rel(0, 0) == doctest::Approx(rel_h).epsilon(1e-13));
      CHECK(cd.last.irrel(0, 0) == doctest::Approx(irrel_h).epsilon(1e-13));
    }
  }

  TEST_CASE("cd_lstm: five steps match the paper's algorithm written out in scalar loops") {
    Generator gen(7);
    nn::LSTM<double> lstm(3, 4, gen, {.batch_first = true});
    const auto x = mul(randn<double>(Shape{1, 5, 3}, gen), 1.5);
    std::vector<std::vector<double>> xs(5, std::vector<double>(3));
    for (int t = 0; t < 5; ++t)
      for (int j = 0; j < 3; ++j) xs[t][j] = x(0, t, j);
    for (const std::vector<bool>& set : {std::vector<bool>{false, true, true, false, false},
                                         std::vector<bool>{true, false, false, false, true}}) {
      auto m = zeros<double>(Shape{1, 5});
      for (int t = 0; t < 5; ++t) m.mutable_data()[t] = set[t] ? 1.0 : 0.0;
      const auto mx = unsqueeze(m, 2);
      const auto cd = cd_lstm(lstm, {mul(x, mx), mul(x, sub(1.0, mx))}, m);
      const auto [rel, irrel] = cd_lstm_test::reference_cd(lstm, xs, set);
      for (int k = 0; k < 4; ++k) {
        CHECK(cd.last.rel(0, k) == doctest::Approx(rel[k]).epsilon(1e-12));
        CHECK(cd.last.irrel(0, k) == doctest::Approx(irrel[k]).epsilon(1e-12));
      }
    }
  }

  TEST_CASE("contextual_decomposition_text: a batch of masks scores as each mask alone") {
    Generator gen(4);
    auto model = cd_lstm_test::make_model(gen);
    const auto b = cd_lstm_test::random_batch(5, 6, gen);
    const auto batched = contextual_decomposition_text(model, b.ids, b.masks, b.lengths);
    for (std::int64_t n = 0; n < 5; ++n) {
      const auto one = contextual_decomposition_text(model, slice(b.ids, 0, n, n + 1), slice(b.masks, 0, n, n + 1),
                                                     slice(b.lengths, 0, n, n + 1));
      CHECK(allclose(slice(batched.rel, 0, n, n + 1), one.rel, 1e-14, 1e-14));
      CHECK(allclose(slice(batched.irrel, 0, n, n + 1), one.irrel, 1e-14, 1e-14));
    }
  }

  TEST_CASE("contextual_decomposition_text: second-order gradcheck of the rel score in every parameter") {
    Generator gen(5);
    nn::LSTMTextClassifier<double> model({.vocab_size = 4, .embedding_dim = 3, .hidden_size = 3}, gen);
    const auto ids = from_vector<std::int64_t>({1, 3, 2, 0, 2, 1}, Shape{2, 3});
    const auto masks = from_vector<double>({1, 0, 1, 0, 1, 0}, Shape{2, 3});
    const auto lengths = from_vector<std::int64_t>({3, 2});
    std::vector<Tensor<double>> params;
    for (const auto& p : model.parameters()) params.push_back(p.detach());
    const auto result = gradcheck(
        [&](const std::vector<Tensor<double>>& a) {
          return functional_call(model, a, [&] {
            const auto cd = contextual_decomposition_text(model, ids, masks, lengths);
            return sum(mul(cd.rel, from_vector<double>({0.7, -1.1, 0.4, 1.3}, Shape{2, 2})));
          });
        },
        params, {.order = 2});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("cd_lstm: bad inputs are errors naming the op and the shapes") {
    Generator gen(6);
    auto model = cd_lstm_test::make_model(gen);
    const auto ids = randint(0, 9, Shape{2, 4}, gen);
    METAGRAD_CHECK_ERROR(contextual_decomposition_text(model, ids, ones<double>(Shape{2, 3})),
                         "contextual_decomposition_text", "[2, 4]", "[2, 3]");
    const auto x = model.embedding(ids);
    METAGRAD_CHECK_ERROR(cd_lstm(model.lstm, {x, zeros<double>(Shape{2, 4, 2})}, ones<double>(Shape{2, 4})), "cd_lstm",
                         "[2, 4, 3]", "[2, 4, 2]");
    METAGRAD_CHECK_ERROR(cd_lstm(model.lstm, {x, zeros_like(x)}, ones<double>(Shape{4, 2})), "cd_lstm", "[4, 2]",
                         "[N, T] = [2, 4]");
    METAGRAD_CHECK_ERROR(cd_lstm(model.lstm, {x, zeros_like(x)}, ones<double>(Shape{2, 4}), from_vector<std::int64_t>({4, 0})),
                         "cd_lstm", "lengths[1] = 0");
  }
}
