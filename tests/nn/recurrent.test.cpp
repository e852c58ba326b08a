// SPDX-License-Identifier: MIT
#include <cmath>
#include <vector>

#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/nn/functional_call.hpp"
#include "metagrad/nn/recurrent.hpp"
#include "metagrad/nn/lstm_classifier.hpp"
#include "metagrad/ops/reduction.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

namespace recurrent_test {

inline double sig(double v) { return 1.0 / (1.0 + std::exp(-v)); }

/// Sets every parameter of `module` from a fixed sequence, so hand computations can follow it.
inline void fill_parameters(nn::Module<double>& module, double start, double step) {
  double v = start;
  for (auto& p : module.parameters()) {
    double* d = p.mutable_data();
    for (std::int64_t i = 0; i < p.numel(); ++i, v += step) d[i] = std::sin(v);
  }
}

/// The sum of output, h_n and c_n, each weighted by a fixed random tensor, so every one is checked.
inline Tensor<double> weighted_outputs(const nn::LSTMResult<double>& r, Generator& gen) {
  const auto w_out = randn<double>(r.output.shape(), gen), w_h = randn<double>(r.state.h.shape(), gen),
             w_c = randn<double>(r.state.c.shape(), gen);
  return add(add(sum(mul(r.output, w_out)), sum(mul(r.state.h, w_h))), sum(mul(r.state.c, w_c)));
}

}  // namespace recurrent_test

TEST_SUITE("nn.recurrent") {
  TEST_CASE("nn.LSTM: two steps of a one-unit LSTM match a hand computation (gate order i, f, g, o)") {
    Generator gen(1);
    nn::LSTM<double> lstm(1, 1, gen);
    recurrent_test::fill_parameters(lstm, 0.3, 0.7);
    const double* wi = lstm.weight_ih[0].data();
    const double* wh = lstm.weight_hh[0].data();
    const double* bi = lstm.bias_ih[0].data();
    const double* bh = lstm.bias_hh[0].data();
    const std::vector<double> xs{0.8, -1.3};
    double h = 0, c = 0;
    std::vector<double> hs;
    for (double x : xs) {
      auto pre = [&](int k) { return wi[k] * x + wh[k] * h + bi[k] + bh[k]; };
      const double i = recurrent_test::sig(pre(0)), f = recurrent_test::sig(pre(1)), g = std::tanh(pre(2)),
                   o = recurrent_test::sig(pre(3));
      c = f * c + i * g;
      h = o * std::tanh(c);
      hs.push_back(h);
    }
    const auto r = lstm(from_vector<double>(xs, Shape{2, 1, 1}));
    CHECK(r.output.shape() == Shape{2, 1, 1});
    CHECK(r.output(0, 0, 0) == doctest::Approx(hs[0]).epsilon(1e-14));
    CHECK(r.output(1, 0, 0) == doctest::Approx(hs[1]).epsilon(1e-14));
    CHECK(r.state.h(0, 0, 0) == doctest::Approx(h).epsilon(1e-14));
    CHECK(r.state.c(0, 0, 0) == doctest::Approx(c).epsilon(1e-14));
  }

  TEST_CASE("nn.LSTM: torch's parameter names, shapes and U(-1/sqrt(H), 1/sqrt(H)) initialisation") {
    Generator gen(3);
    nn::LSTM<float> lstm(5, 4, gen, {.num_layers = 2});
    const auto sd = lstm.state_dict();
    const std::vector<std::string> names{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                         "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"};
    CHECK(sd.names() == names);
    CHECK(sd.find("weight_ih_l0")->shape() == Shape{16, 5});
    CHECK(sd.find("weight_ih_l1")->shape() == Shape{16, 4});
    CHECK(sd.find("weight_hh_l1")->shape() == Shape{16, 4});
    CHECK(sd.find("bias_hh_l1")->shape() == Shape{16});
    for (const auto& [name, p] : sd)
      for (std::int64_t i = 0; i < p.numel(); ++i) CHECK(std::abs(p.data()[i]) <= 0.5f);
    nn::LSTM<float> no_bias(5, 4, gen, {.bias = false});
    CHECK(no_bias.state_dict().names() == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0"});
  }

  TEST_CASE("nn.LSTM: batch_first is the time-major LSTM with the first two dims swapped") {
    Generator gen(4);
    nn::LSTM<double> a(3, 5, gen, {.num_layers = 2}), b(3, 5, gen, {.num_layers = 2, .batch_first = true});
    b.load_state_dict(a.state_dict());
    const auto x = randn<double>(Shape{4, 2, 3}, gen);
    const auto ra = a(x), rb = b(transpose(x, 0, 1));
    CHECK(allclose(transpose(rb.output, 0, 1), ra.output, 1e-15, 1e-15));
    CHECK(allclose(rb.state.h, ra.state.h, 1e-15, 1e-15));
    CHECK(allclose(rb.state.c, ra.state.c, 1e-15, 1e-15));
  }

  TEST_CASE("nn.LSTM: with lengths each sequence ends at its last real token, as a packed sequence") {
    Generator gen(5);
    nn::LSTM<double> lstm(3, 4, gen, {.num_layers = 2, .batch_first = true});
    const auto x = randn<double>(Shape{3, 5, 3}, gen);
    const auto lengths = from_vector<std::int64_t>({5, 2, 4});
    const auto r = lstm(x, {}, lengths);
    for (std::int64_t n = 0; n < 3; ++n) {
      const std::int64_t len = lengths(n);
      const auto alone = lstm(slice(slice(x, 0, n, n + 1), 1, 0, len));
      CHECK(allclose(select(r.state.h, 1, n), select(alone.state.h, 1, 0), 1e-14, 1e-14));
      CHECK(allclose(select(r.state.c, 1, n), select(alone.state.c, 1, 0), 1e-14, 1e-14));
      CHECK(allclose(slice(select(r.output, 0, n), 0, 0, len), select(alone.output, 0, 0), 1e-14, 1e-14));
      for (std::int64_t t = len; t < 5; ++t)
        for (std::int64_t k = 0; k < 4; ++k) CHECK(r.output(n, t, k) == 0.0);
    }
  }

  TEST_CASE("nn.LSTM: second-order gradcheck in x, h0, c0 and every parameter (2 layers, odd sizes, lengths)") {
    Generator gen(6);
    nn::LSTM<double> lstm(3, 3, gen, {.num_layers = 2});
    const auto x = randn<double>(Shape{3, 2, 3}, gen);
    const auto h0 = mul(randn<double>(Shape{2, 2, 3}, gen), 0.5), c0 = mul(randn<double>(Shape{2, 2, 3}, gen), 0.5);
    const auto lengths = from_vector<std::int64_t>({3, 2});
    std::vector<Tensor<double>> inputs{x, h0, c0};
    for (const auto& p : lstm.parameters()) inputs.push_back(p.detach());
    Generator weights(7);
    const auto result = gradcheck(
        [&](const std::vector<Tensor<double>>& a) {
          const std::vector<Tensor<double>> params(a.begin() + 3, a.end());
          return functional_call(lstm, params, [&] {
            Generator w = weights;  // the same weighting at every evaluation
            return recurrent_test::weighted_outputs(lstm(a[0], {a[1], a[2]}, lengths), w);
          });
        },
        inputs, {.order = 2});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("nn.LSTM: third-order gradcheck of a one-unit LSTM") {
    Generator gen(8);
    nn::LSTM<double> lstm(1, 1, gen);
    const auto x = randn<double>(Shape{2, 1, 1}, gen);
    std::vector<Tensor<double>> inputs{x};
    for (const auto& p : lstm.parameters()) inputs.push_back(p.detach());
    const auto result = gradcheck(
        [&](const std::vector<Tensor<double>>& a) {
          const std::vector<Tensor<double>> params(a.begin() + 1, a.end());
          return functional_call(lstm, params, [&] { return sum(lstm(a[0]).output); });
        },
        inputs, {.order = 3});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("nn.LSTM: bad inputs are errors naming the op and the shapes") {
    Generator gen(9);
    nn::LSTM<float> lstm(3, 4, gen, {.num_layers = 2});
    METAGRAD_CHECK_ERROR(lstm(zeros<float>(Shape{5, 3})), "LSTM", "[5, 3]", "[T, N, 3]");
    METAGRAD_CHECK_ERROR(lstm(zeros<float>(Shape{5, 2, 4})), "LSTM", "[5, 2, 4]");
    METAGRAD_CHECK_ERROR(lstm(zeros<float>(Shape{5, 2, 3}), {zeros<float>(Shape{1, 2, 4}), zeros<float>(Shape{1, 2, 4})}),
                         "LSTM", "[1, 2, 4]", "[2, 2, 4]");
    METAGRAD_CHECK_ERROR(lstm(zeros<float>(Shape{5, 2, 3}), {zeros<float>(Shape{2, 2, 4}), {}}), "LSTM", "h0 and c0");
    METAGRAD_CHECK_ERROR(lstm(zeros<float>(Shape{5, 2, 3}), {}, from_vector<std::int64_t>({5, 6})), "LSTM",
                         "lengths[1] = 6", "[1, 5]");
    METAGRAD_CHECK_ERROR(lstm(zeros<float>(Shape{5, 2, 3}), {}, from_vector<std::int64_t>({5})), "LSTM", "[1]", "[2]");
    METAGRAD_CHECK_ERROR(nn::LSTM<float>(3, 0, gen), "LSTM", "positive");
  }

  TEST_CASE("nn.LSTMTextClassifier: logits from the last real token's hidden state") {
    Generator gen(10);
    nn::LSTMTextClassifier<double> model({.vocab_size = 7, .embedding_dim = 3, .hidden_size = 4}, gen);
    CHECK(model.state_dict().names().front() == "embedding.weight");
    CHECK(model.state_dict().find("lstm.weight_hh_l0") != nullptr);
    const auto ids = from_vector<std::int64_t>({1, 2, 3, 0, 4, 5, 6, 2}, Shape{2, 4});
    const auto lengths = from_vector<std::int64_t>({3, 4});
    const auto logits = model(ids, lengths);
    CHECK(logits.shape() == Shape{2, 2});
    const auto first = model(slice(slice(ids, 0, 0, 1), 1, 0, 3));
    CHECK(allclose(slice(logits, 0, 0, 1), first, 1e-14, 1e-14));
    METAGRAD_CHECK_ERROR(model(from_vector<std::int64_t>({1, 2})), "LSTMTextClassifier", "[2]");
  }
}

TEST_SUITE("nn.recurrent") {
  TEST_CASE("nn.GRU: two steps of a one-unit GRU match a hand computation (gate order r, z, n)") {
    Generator gen(11);
    nn::GRU<double> gru(1, 1, gen);
    recurrent_test::fill_parameters(gru, 0.2, 0.9);
    const double* wi = gru.weight_ih[0].data();
    const double* wh = gru.weight_hh[0].data();
    const double* bi = gru.bias_ih[0].data();
    const double* bh = gru.bias_hh[0].data();
    const std::vector<double> xs{-0.6, 1.1};
    double h = 0;
    std::vector<double> hs;
    for (double x : xs) {
      const double r = recurrent_test::sig(wi[0] * x + bi[0] + wh[0] * h + bh[0]);
      const double z = recurrent_test::sig(wi[1] * x + bi[1] + wh[1] * h + bh[1]);
      const double n = std::tanh(wi[2] * x + bi[2] + r * (wh[2] * h + bh[2]));
      h = (1 - z) * n + z * h;
      hs.push_back(h);
    }
    const auto r = gru(from_vector<double>(xs, Shape{2, 1, 1}));
    CHECK(r.output(0, 0, 0) == doctest::Approx(hs[0]).epsilon(1e-14));
    CHECK(r.output(1, 0, 0) == doctest::Approx(hs[1]).epsilon(1e-14));
    CHECK(r.h_n(0, 0, 0) == doctest::Approx(h).epsilon(1e-14));
    CHECK(gru.state_dict().names() ==
          std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"});
    CHECK(gru.weight_ih[0].shape() == Shape{3, 1});
  }

  TEST_CASE("nn.GRU: lengths end each sequence at its last real token") {
    Generator gen(12);
    nn::GRU<double> gru(2, 3, gen, {.num_layers = 2, .batch_first = true});
    const auto x = randn<double>(Shape{2, 4, 2}, gen);
    const auto r = gru(x, {}, from_vector<std::int64_t>({2, 4}));
    const auto alone = gru(slice(slice(x, 0, 0, 1), 1, 0, 2));
    CHECK(allclose(select(r.h_n, 1, 0), select(alone.h_n, 1, 0), 1e-14, 1e-14));
    CHECK(r.output(0, 3, 1) == 0.0);
  }

  TEST_CASE("nn.GRU: second-order gradcheck in x, h0 and every parameter (2 layers, odd sizes, lengths)") {
    Generator gen(13);
    nn::GRU<double> gru(3, 3, gen, {.num_layers = 2});
    const auto x = randn<double>(Shape{3, 2, 3}, gen);
    const auto h0 = mul(randn<double>(Shape{2, 2, 3}, gen), 0.5);
    const auto lengths = from_vector<std::int64_t>({2, 3});
    std::vector<Tensor<double>> inputs{x, h0};
    for (const auto& p : gru.parameters()) inputs.push_back(p.detach());
    const auto w_out = randn<double>(Shape{3, 2, 3}, gen), w_h = randn<double>(Shape{2, 2, 3}, gen);
    const auto result = gradcheck(
        [&](const std::vector<Tensor<double>>& a) {
          const std::vector<Tensor<double>> params(a.begin() + 2, a.end());
          return functional_call(gru, params, [&] {
            const auto r = gru(a[0], a[1], lengths);
            return add(sum(mul(r.output, w_out)), sum(mul(r.h_n, w_h)));
          });
        },
        inputs, {.order = 2});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("nn.GRU: bad inputs are errors naming the op and the shapes") {
    Generator gen(14);
    nn::GRU<float> gru(3, 4, gen);
    METAGRAD_CHECK_ERROR(gru(zeros<float>(Shape{5, 2, 2})), "GRU", "[5, 2, 2]", "[T, N, 3]");
    METAGRAD_CHECK_ERROR(gru(zeros<float>(Shape{5, 2, 3}), zeros<float>(Shape{1, 3, 4})), "GRU", "h0", "[1, 3, 4]",
                         "[1, 2, 4]");
    METAGRAD_CHECK_ERROR(gru(zeros<float>(Shape{5, 2, 3}), {}, from_vector<std::int64_t>({0, 1})), "GRU",
                         "lengths[0] = 0");
  }
}
