// SPDX-License-Identifier: MIT
#include <stdexcept>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/nn/functional_call.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/sequential.hpp"
#include "metagrad/ops/reduction.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

namespace {
struct Scaled : nn::Layer<double> {
  explicit Scaled(Generator& gen) : lin(2, 2, gen) {
    shift = full<double>(Shape{2}, 0.5);
    register_module("lin", lin);
    register_buffer("shift", shift);
  }
  Tensor<double> forward(const Tensor<double>& x) override { return lin(x) + shift; }
  nn::Linear<double> lin;
  Tensor<double> shift;
};
}  // namespace

TEST_SUITE("nn.functional_call") {
  TEST_CASE("nn.functional_call: forward reads the given tensors, and the module's own come back") {
    Generator gen(1);
    nn::Linear<double> lin(2, 3, gen);
    const auto w0 = lin.weight, b0 = lin.bias;
    const auto w = tensor<double>({{1, 0}, {0, 1}, {1, 1}}), b = tensor<double>({1, 2, 3});
    const auto x = tensor<double>({{2, 5}});
    CHECK(allclose(functional_call(lin, {w, b}, x), tensor<double>({{3, 7, 10}}), 0, 0));
    CHECK(allclose(functional_call(lin, NamedTensors<double>{{"weight", w}}, x), linear(x, w, b0), 0, 0));
    CHECK(lin.weight.is_same(w0));
    CHECK(lin.bias.is_same(b0));
  }

  TEST_CASE("nn.functional_call: parameters are restored when the forward throws") {
    Generator gen(1);
    nn::Linear<double> lin(2, 3, gen);
    const auto w0 = lin.weight, b0 = lin.bias;
    const auto w = zeros<double>(Shape{3, 2}), b = zeros<double>(Shape{3});
    bool saw_override = false;
    CHECK_THROWS_AS(functional_call(lin, {w, b},
                                    [&]() -> Tensor<double> {
                                      saw_override = lin.weight.is_same(w) && lin.bias.is_same(b);
                                      throw std::runtime_error("forward failed");
                                    }),
                    std::runtime_error);
    CHECK(saw_override);
    CHECK(lin.weight.is_same(w0));
    CHECK(lin.bias.is_same(b0));
  }

  TEST_CASE("nn.functional_call: nested overrides unwind to the module's own tensors") {
    Generator gen(1);
    nn::Linear<double> lin(2, 3, gen);
    const auto w0 = lin.weight;
    const auto w1 = ones<double>(Shape{3, 2}), w2 = zeros<double>(Shape{3, 2});
    functional_call(lin, NamedTensors<double>{{"weight", w1}}, [&] {
      functional_call(lin, NamedTensors<double>{{"weight", w2}}, [&] { CHECK(lin.weight.is_same(w2)); });
      CHECK(lin.weight.is_same(w1));
    });
    CHECK(lin.weight.is_same(w0));
  }

  TEST_CASE("nn.functional_call: buffers and nested parameters by dotted name") {
    Generator gen(1);
    Scaled m(gen);
    const auto x = tensor<double>({{1, 2}});
    const NamedTensors<double> over{{"lin.weight", eye<double>(2)}, {"lin.bias", zeros<double>(Shape{2})},
                                    {"shift", full<double>(Shape{2}, 10.0)}};
    CHECK(allclose(functional_call(m, over, x), tensor<double>({{11, 12}}), 0, 0));
    CHECK(allclose(m.shift, full<double>(Shape{2}, 0.5), 0, 0));
  }

  TEST_CASE("nn.functional_call: a one-step unroll differentiates through the override (hand-computed)") {
    // y = w·x, one SGD step of size α on (w x1 - y1)², then the loss (w' x2 - y2)² at w'.
    Generator gen(1);
    nn::Linear<double> lin(1, 1, gen, false);
    const double w = 0.7, x1 = 1.5, y1 = 2.0, x2 = -0.5, y2 = 1.0, a = 0.1;
    lin.load_state_dict({{"weight", full<double>(Shape{1, 1}, w)}});
    auto alpha = full<double>(Shape{1, 1}, a).requires_grad_();
    const auto train = sum(square(lin(full<double>(Shape{1, 1}, x1)) - y1));
    const auto g = grad(train, lin.weight, {.create_graph = true});
    const auto adapted = lin.weight - alpha * g;
    const auto val = sum(square(functional_call(lin, {adapted}, full<double>(Shape{1, 1}, x2)) - y2));
    const auto hyper = grad(val, std::vector{alpha, lin.weight});
    const double gw = 2 * x1 * (w * x1 - y1), w1 = w - a * gw, r = w1 * x2 - y2;
    CHECK(val.item() == doctest::Approx(r * r).epsilon(1e-14));
    CHECK(hyper[0].item() == doctest::Approx(2 * r * x2 * -gw).epsilon(1e-14));
    CHECK(hyper[1].item() == doctest::Approx(2 * r * x2 * (1 - a * 2 * x1 * x1)).epsilon(1e-14));
    CHECK(lin.weight.item() == w);
  }

  TEST_CASE("nn.functional_call: bad overrides are errors naming the key and shapes, and change nothing") {
    Generator gen(1);
    nn::Sequential<double> seq{std::make_shared<nn::Linear<double>>(2, 3, gen)};
    const auto before = seq.parameters();
    const auto x = zeros<double>(Shape{1, 2});
    METAGRAD_CHECK_ERROR(functional_call(seq, NamedTensors<double>{{"0.weight", zeros<double>(Shape{2, 3})},
                                                                   {"0.bais", zeros<double>(Shape{3})}},
                                         x),
                         "functional_call", "'0.weight'", "given [2, 3]", "module has [3, 2]", "'0.bais'");
    METAGRAD_CHECK_ERROR(functional_call(seq, {zeros<double>(Shape{3, 2})}, x), "functional_call", "1 tensors",
                         "2 parameters");
    METAGRAD_CHECK_ERROR(ParameterOverride<double>(seq, NamedTensors<double>{{"0.weight", zeros<double>(Shape{3, 2})}}, true),
                         "functional_call", "missing '0.bias'");
    METAGRAD_CHECK_ERROR(functional_call(seq, {Tensor<double>(), zeros<double>(Shape{3})}, x), "functional_call",
                         "'0.weight'", "undefined");
    const auto after = seq.parameters();
    for (std::size_t i = 0; i < before.size(); ++i) CHECK(after[i].is_same(before[i]));
  }
}
