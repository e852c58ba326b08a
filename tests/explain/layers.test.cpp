// SPDX-License-Identifier: MIT
#include "metagrad/explain/cd.hpp"
#include "metagrad/explain/gradient.hpp"
#include "metagrad/explain/ibp.hpp"
#include "metagrad/explain/integrated_gradients.hpp"
#include "metagrad/explain/smoothgrad.hpp"
#include "metagrad/ops/loss.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using metagrad::testing::same;

namespace explain_layers_test {

/// A user's own module (not a Layer, no operator()) that declares the chain its forward applies.
struct Net : nn::Module<double> {
  nn::Flatten<double> flat;
  nn::Linear<double> fc1, fc2;
  nn::ReLU<double> relu;
  explicit Net(Generator& gen) : fc1(16, 6, gen), fc2(6, 3, gen) {
    register_module("fc1", fc1);
    register_module("fc2", fc2);
  }
  Tensor<double> forward(const Tensor<double>& x) { return fc2(relu(fc1(flat(x)))); }
  std::vector<nn::Layer<double>*> layers() { return {&flat, &fc1, &relu, &fc2}; }
};

/// The same network as a Sequential, drawn from the same seed (so with the same weights).
std::shared_ptr<nn::Sequential<double>> as_sequential(Generator& gen) {
  auto seq = std::make_shared<nn::Sequential<double>>();
  seq->emplace_back<nn::Flatten<double>>();
  seq->emplace_back<nn::Linear<double>>(16, 6, gen);
  seq->emplace_back<nn::ReLU<double>>();
  seq->emplace_back<nn::Linear<double>>(6, 3, gen);
  return seq;
}

/// A user's Layer that is a chain (Linear, ReLU), walked also when nested in a Sequential.
struct Block : nn::Layer<double> {
  nn::Linear<double> fc;
  nn::ReLU<double> relu;
  Block(std::int64_t in, std::int64_t out, Generator& gen) : fc(in, out, gen) { register_module("fc", fc); }
  Tensor<double> forward(const Tensor<double>& x) override { return relu(fc(x)); }
  std::vector<nn::Layer<double>*> layers() override { return {&fc, &relu}; }
};

/// A layer type of one's own: x², with IBP and CD rules supplied through ExplainRules.
struct Square : nn::Layer<double>, ExplainRules<double> {
  Tensor<double> forward(const Tensor<double>& x) override { return mul(x, x); }
  Bounds<double> ibp_rule(const Bounds<double>& in) override {
    // min over [l, u] is l² if l > 0, u² if u < 0, else 0; the max is max(|l|, |u|)².
    const auto lo = add(square(relu(in.lower)), square(relu(neg(in.upper))));
    const auto al = abs(in.lower), au = abs(in.upper);
    const auto hi = mul(add(add(al, au), abs(sub(al, au))), 0.5);
    return {lo, square(hi)};
  }
  Decomposition<double> cd_rule(const Decomposition<double>& in) override {
    const auto rel = square(in.rel);
    return {rel, sub(square(in.total()), rel)};
  }
  static Tensor<double> square(const Tensor<double>& t) { return mul(t, t); }
};

/// A layer with only an IBP rule.
struct IbpOnly : nn::Layer<double>, ExplainRules<double> {
  Tensor<double> forward(const Tensor<double>& x) override { return x; }
  Bounds<double> ibp_rule(const Bounds<double>& in) override { return in; }
};

/// A layer type with no rule at all.
struct Unknown : nn::Layer<double> {
  Tensor<double> forward(const Tensor<double>& x) override { return x; }
};

struct NetWith : nn::Module<double> {
  nn::Linear<double> fc1, fc2;
  std::shared_ptr<nn::Layer<double>> middle;
  NetWith(std::shared_ptr<nn::Layer<double>> mid, Generator& gen) : fc1(4, 5, gen), fc2(5, 2, gen), middle(mid) {}
  Tensor<double> forward(const Tensor<double>& x) { return fc2(middle->forward(fc1(x))); }
  std::vector<nn::Layer<double>*> layers() { return {&fc1, middle.get(), &fc2}; }
};

bool contains(const Bounds<double>& b, const Tensor<double>& y) {
  for (std::int64_t i = 0; i < y.numel(); ++i)
    if (!(b.lower.data()[i] <= y.data()[i] + 1e-12 && y.data()[i] <= b.upper.data()[i] + 1e-12)) return false;
  return true;
}

}  // namespace explain_layers_test

using namespace explain_layers_test;

TEST_SUITE("explain.layers") {
  TEST_CASE("explain.layers: a user's module declaring layers() gets the Sequential's IBP bounds and CD") {
    Generator g1(31), g2(31);
    Net net(g1);
    auto seq = as_sequential(g2);
    REQUIRE(same(net.fc1.weight, dynamic_cast<nn::Linear<double>&>((*seq)[1]).weight));
    Generator gen(5);
    const auto x = randn<double>(Shape{3, 1, 4, 4}, gen);
    const auto mask = bernoulli<double>(Shape{1, 1, 4, 4}, 0.5, gen);
    CHECK(same(net.forward(x), seq->forward(x)));

    const auto bn = interval_bounds(net, x, 0.2, mask), bs = interval_bounds(*seq, x, 0.2, mask);
    CHECK(same(bn.lower, bs.lower));
    CHECK(same(bn.upper, bs.upper));
    const auto bn2 = interval_bounds(net, x - 0.1, x + 0.3), bs2 = interval_bounds(*seq, x - 0.1, x + 0.3);
    CHECK(same(bn2.lower, bs2.lower));
    CHECK(same(bn2.upper, bs2.upper));
    CHECK(contains(bn2, net.forward(x + 0.1)));

    const auto dn = contextual_decomposition(net, x, mask), ds = contextual_decomposition(*seq, x, mask);
    CHECK(same(dn.rel, ds.rel));
    CHECK(same(dn.irrel, ds.irrel));
    CHECK(allclose(dn.total(), net.forward(x), 1e-12, 0));
    // The CD explainer runs the module's forward for the predicted class, then its chain.
    CHECK(same(ContextualDecomposition{.tile = 2}(net, x), ContextualDecomposition{.tile = 2}(*seq, x)));
  }

  TEST_CASE("explain.layers: a user's Layer overriding layers() is walked when nested in a Sequential") {
    Generator g1(8), g2(8);
    nn::Sequential<double> nested;
    nested.emplace_back<Block>(4, 5, g1);
    nested.emplace_back<nn::Linear<double>>(5, 2, g1);
    nn::Sequential<double> flat;
    flat.emplace_back<nn::Linear<double>>(4, 5, g2);
    flat.emplace_back<nn::ReLU<double>>();
    flat.emplace_back<nn::Linear<double>>(5, 2, g2);
    Generator gen(2);
    const auto x = randn<double>(Shape{6, 4}, gen);
    const auto b1 = interval_bounds(nested, x - 0.5, x + 0.5), b2 = interval_bounds(flat, x - 0.5, x + 0.5);
    CHECK(same(b1.lower, b2.lower));
    CHECK(same(b1.upper, b2.upper));
    const auto m = bernoulli<double>(Shape{1, 4}, 0.5, gen);
    CHECK(same(contextual_decomposition(nested, x, m).rel, contextual_decomposition(flat, x, m).rel));
  }

  TEST_CASE("explain.layers: saliency explainers accept a module with forward(x), by reference or pointer") {
    Generator g1(31), g2(31);
    auto net = std::make_shared<Net>(g1);
    auto seq = as_sequential(g2);
    Generator gen(9);
    const auto x = randn<double>(Shape{2, 1, 4, 4}, gen);
    const auto y = from_vector<std::int64_t>({1, 2}, Shape{2});
    CHECK(same(Gradient{}(*net, x, y), Gradient{}(*seq, x, y)));
    CHECK(same(Gradient{}(net, x), Gradient{}(seq, x)));
    CHECK(same(GradientTimesInput{}(*net, x, y), GradientTimesInput{}(*seq, x, y)));
    CHECK(same(explain(IntegratedGradients{.steps = 8}, *net, x, y), explain(IntegratedGradients{.steps = 8}, *seq, x, y)));
    CHECK(same(SmoothGrad{.samples = 4, .seed = 3}(*net, x, y), SmoothGrad{.samples = 4, .seed = 3}(*seq, x, y)));
    // With create_graph the saliency trains the module's own parameters.
    const auto g = Gradient{}(*net, x, y, {.create_graph = true});
    const auto dw = grad(sum(mul(g, g)), net->fc1.weight);
    CHECK(dw.shape() == net->fc1.weight.shape());
  }

  TEST_CASE("explain.layers: a layer type of one's own adds IBP and CD rules through ExplainRules") {
    Generator gen(4);
    NetWith net(std::make_shared<Square>(), gen);
    const auto x = randn<double>(Shape{5, 4}, gen);
    const auto b = interval_bounds(net, x - 0.3, x + 0.3);
    int outside = 0;
    for (int k = 0; k < 300; ++k)
      if (!contains(b, net.forward(x + rand<double>(x.shape(), gen, -0.3, 0.3)))) ++outside;
    CHECK(outside == 0);
    CHECK(contains(b, net.forward(x)));
    const auto m = from_vector<double>({1, 0, 1, 0}, Shape{1, 4});
    const auto d = contextual_decomposition(net, x, m);
    CHECK(allclose(d.total(), net.forward(x), 1e-12, 1e-12));
    // The bounds are ops: a worst-case loss trains through the user's rule.
    const auto loss = cross_entropy(worst_case_logits(b, from_vector<std::int64_t>({0, 1, 0, 1, 0}, Shape{5})),
                                    from_vector<std::int64_t>({0, 1, 0, 1, 0}, Shape{5}));
    CHECK(grad(loss, net.fc1.weight).shape() == net.fc1.weight.shape());
  }

  TEST_CASE("explain.layers: an unsupported layer is an error naming its type and the supported ones") {
    Generator gen(1);
    NetWith net(std::make_shared<Unknown>(), gen);
    const auto x = randn<double>(Shape{2, 4}, gen);
    METAGRAD_CHECK_ERROR(interval_bounds(net, x - 0.1, x + 0.1), "interval_bounds", "explain_layers_test::Unknown",
                         "supported: Linear", "layers()", "ExplainRules");
    METAGRAD_CHECK_ERROR(contextual_decomposition(net, x, ones_like(x)), "contextual_decomposition",
                         "explain_layers_test::Unknown", "supported: Linear", "ExplainRules");
    NetWith gelu(std::make_shared<nn::GELU<double>>(), gen);
    METAGRAD_CHECK_ERROR(interval_bounds(gelu, x - 0.1, x + 0.1), "metagrad::nn::GELU<double>", "not supported");
    NetWith ibp_only(std::make_shared<IbpOnly>(), gen);
    CHECK(interval_bounds(ibp_only, x - 0.1, x + 0.1).lower.shape() == Shape{2, 2});
    METAGRAD_CHECK_ERROR(contextual_decomposition(ibp_only, x, ones_like(x)), "explain_layers_test::IbpOnly",
                         "does not override cd_rule");
  }
}
