// SPDX-License-Identifier: MIT
#include <cmath>

#include "metagrad/core/creation.hpp"
#include "metagrad/nn/init.hpp"
#include "metagrad/nn/linear.hpp"
#include "test_util.hpp"

using namespace metagrad;

namespace {
struct Moments {
  double mean = 0, stddev = 0, max_abs = 0;
};
Moments moments(const Tensor<double>& t) {
  Moments m;
  for (double v : t.values()) m.mean += v;
  m.mean /= static_cast<double>(t.numel());
  for (double v : t.values()) {
    m.stddev += (v - m.mean) * (v - m.mean);
    m.max_abs = std::max(m.max_abs, std::abs(v));
  }
  m.stddev = std::sqrt(m.stddev / static_cast<double>(t.numel()));
  return m;
}
}  // namespace

TEST_SUITE("nn.init") {
  TEST_CASE("nn.init: fans of linear and convolution weights, and gains") {
    CHECK(nn::init::fan_in_and_fan_out(Shape{30, 20}) == std::pair<std::int64_t, std::int64_t>{20, 30});
    CHECK(nn::init::fan_in_and_fan_out(Shape{8, 3, 5, 5}) == std::pair<std::int64_t, std::int64_t>{75, 200});
    CHECK(nn::init::calculate_gain(nn::init::Nonlinearity::relu) == doctest::Approx(std::sqrt(2.0)));
    CHECK(nn::init::calculate_gain(nn::init::Nonlinearity::tanh) == doctest::Approx(5.0 / 3.0));
    CHECK(nn::init::calculate_gain(nn::init::Nonlinearity::leaky_relu, std::sqrt(5.0)) == doctest::Approx(std::sqrt(1.0 / 3.0)));
    METAGRAD_CHECK_ERROR(nn::init::fan_in_and_fan_out(Shape{5}), "init", "[5]");
  }

  TEST_CASE("nn.init: the same seed gives bit-identical tensors; another seed does not") {
    auto a = Tensor<double>::empty(Shape{16, 9}), b = Tensor<double>::empty(Shape{16, 9});
    Generator g1(42), g2(42), g3(43);
    nn::init::kaiming_uniform_(a, g1);
    nn::init::kaiming_uniform_(b, g2);
    CHECK(a.to_vector() == b.to_vector());
    nn::init::xavier_normal_(b, g3);
    nn::init::xavier_normal_(a, g1);
    CHECK(a.to_vector() != b.to_vector());
  }

  TEST_CASE("nn.init: the distributions have the documented bound and spread") {
    Generator gen(7);
    auto w = Tensor<double>::empty(Shape{200, 300});  // fan_in 300, fan_out 200, 60000 draws
    nn::init::kaiming_uniform_(w, gen, 0.0, nn::init::FanMode::fan_in, nn::init::Nonlinearity::relu);
    const double ku = std::sqrt(2.0) * std::sqrt(3.0 / 300);
    CHECK(moments(w).max_abs <= ku);
    CHECK(moments(w).stddev == doctest::Approx(ku / std::sqrt(3.0)).epsilon(0.02));

    nn::init::kaiming_normal_(w, gen, 0.0, nn::init::FanMode::fan_out, nn::init::Nonlinearity::relu);
    CHECK(moments(w).stddev == doctest::Approx(std::sqrt(2.0 / 200)).epsilon(0.02));
    CHECK(std::abs(moments(w).mean) < 0.01 * std::sqrt(2.0 / 200));

    nn::init::xavier_uniform_(w, gen, 2.0);
    const double xu = 2.0 * std::sqrt(6.0 / 500);
    CHECK(moments(w).max_abs <= xu);
    CHECK(moments(w).max_abs > 0.999 * xu);

    nn::init::xavier_normal_(w, gen);
    CHECK(moments(w).stddev == doctest::Approx(std::sqrt(2.0 / 500)).epsilon(0.02));

    nn::init::zeros_(w);
    CHECK(moments(w).max_abs == 0);
  }

  TEST_CASE("nn.init: float and double draws from one seed agree to float precision") {
    auto f = Tensor<float>::empty(Shape{4, 6});
    auto d = Tensor<double>::empty(Shape{4, 6});
    Generator g1(9), g2(9);
    nn::init::kaiming_normal_(f, g1);
    nn::init::kaiming_normal_(d, g2);
    for (std::int64_t i = 0; i < f.numel(); ++i) CHECK(f.data()[i] == static_cast<float>(d.data()[i]));
  }
}

namespace nn_init_test {
/// A module of one's own with a parameter reachable as a member and by name.
struct Net : nn::Module<double> {
  nn::Linear<double> fc{3, 4};
  Net() { register_module("fc", fc); }
};
}  // namespace nn_init_test

TEST_SUITE("nn.init") {
  TEST_CASE("nn.init: without a Generator the initialisers draw from the default generator") {
    auto a = Tensor<double>::empty(Shape{20, 30}), b = Tensor<double>::empty(Shape{20, 30});
    manual_seed(10);
    nn::init::kaiming_uniform_(a);
    nn::init::xavier_uniform_(a);
    nn::init::normal_(a, 0, 0.02);
    nn::init::uniform_(a, -1, 1);
    nn::init::kaiming_normal_(a, 0.0, nn::init::FanMode::fan_out);
    nn::init::xavier_normal_(a, 2.0);
    Generator gen(10);
    nn::init::kaiming_uniform_(b, gen);
    nn::init::xavier_uniform_(b, gen);
    nn::init::normal_(b, gen, 0, 0.02);
    nn::init::uniform_(b, gen, -1, 1);
    nn::init::kaiming_normal_(b, gen, 0.0, nn::init::FanMode::fan_out);
    nn::init::xavier_normal_(b, gen, 2.0);
    CHECK(metagrad::testing::same(a, b));
    // normal_(w, 0, 0.02) is N(0, 0.02²), not a Generator argument.
    auto big = Tensor<double>::empty(Shape{200, 200});
    nn::init::normal_(big, 0, 0.02);
    CHECK(moments(big).stddev == doctest::Approx(0.02).epsilon(0.02));  // sd of the estimate: 0.35%
    nn::init::ones_(a);
    CHECK(moments(a).mean == 1.0);
    nn::init::constant_(a, -2.5);
    CHECK(moments(a).mean == -2.5);
  }

  TEST_CASE("nn.init: filling a module's parameter in place, as a member or through named_parameters()") {
    nn_init_test::Net net;
    const auto x = tensor<double>({{1, 2, 3}});
    nn::init::zeros_(net.fc.bias);
    CHECK(moments(net.fc.bias).max_abs == 0);
    // named_parameters() returns copies of the handles: filling one writes the module's storage.
    for (const auto& [name, p] : net.named_parameters())
      if (name == "fc.weight") nn::init::constant_(p, 0.5);
    CHECK(moments(net.fc.weight).mean == 0.5);
    CHECK(metagrad::testing::same(net.fc(x), tensor<double>({{3, 3, 3, 3}})));
    for (auto p : net.parameters()) nn::init::ones_(p);
    CHECK(metagrad::testing::same(net.fc(x), tensor<double>({{7, 7, 7, 7}})));
    // Still the same leaves: what an optimizer holds sees the new values.
    CHECK(net.fc.weight.is_leaf());
    CHECK(net.fc.weight.requires_grad());
    nn::Linear<double> no_bias(3, 4, false);
    METAGRAD_CHECK_ERROR(nn::init::zeros_(no_bias.bias), "init", "undefined");
  }

  TEST_CASE("nn.init: trunc_normal_ stays in [a, b] with the truncated distribution's spread") {
    auto w = Tensor<double>::empty(Shape{100, 100});
    Generator gen(14);
    nn::init::trunc_normal_(w, gen, 0.0, 1.0, -1.0, 1.0);
    CHECK(moments(w).max_abs <= 1.0);
    CHECK(moments(w).max_abs > 0.99);
    // Var of N(0, 1) truncated to [-1, 1]: 1 − 2φ(1)/(2Φ(1) − 1) ≈ 0.2911.
    CHECK(moments(w).stddev == doctest::Approx(std::sqrt(0.29112)).epsilon(0.02));
    manual_seed(14);
    auto v = Tensor<double>::empty(Shape{100, 100});
    nn::init::trunc_normal_(v, 0.0, 1.0, -1.0, 1.0);
    CHECK(metagrad::testing::same(v, w));
    METAGRAD_CHECK_ERROR(nn::init::trunc_normal_(w, 0.0, 1.0, 10.0, 11.0), "trunc_normal_", "almost no mass");
  }
}
