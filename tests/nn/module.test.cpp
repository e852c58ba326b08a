// SPDX-License-Identifier: MIT
#include "metagrad/autograd/engine.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/ops/reduction.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;

namespace {
// A two-level tree: an owned child, a member child, an own parameter and a buffer.
struct Block : nn::Module<double> {
  explicit Block(Generator& gen) : inner(3, 2, gen) {
    scale = full<double>(Shape{2}, 1.5);
    count = zeros<double>(Shape{1});
    register_parameter("scale", scale);
    register_buffer("count", count);
    head = register_module("head", std::make_shared<nn::Linear<double>>(2, 4, gen));
    register_module("inner", inner);
  }
  Tensor<double> scale, count;
  std::shared_ptr<nn::Linear<double>> head;
  nn::Linear<double> inner;
};
struct Net : nn::Module<double> {
  explicit Net(Generator& gen) : block(gen) { register_module("block", block); }
  Block block;
};
}  // namespace

TEST_SUITE("nn.module") {
  TEST_CASE("nn.module: named_parameters are dotted, ordered own-first then children in registration order") {
    Generator gen(1);
    Net net(gen);
    CHECK(net.named_parameters().names() == std::vector<std::string>{"block.scale", "block.head.weight", "block.head.bias",
                                                                     "block.inner.weight", "block.inner.bias"});
    CHECK(net.named_buffers().names() == std::vector<std::string>{"block.count"});
    CHECK(net.num_parameters() == 2 + 8 + 4 + 6 + 2);
    // The handles are the members themselves, and registration made them require grad.
    CHECK(net.parameters()[3].is_same(net.block.inner.weight));
    for (const auto& p : net.parameters()) CHECK(p.requires_grad());
    CHECK_FALSE(net.named_buffers()[0].second.requires_grad());
  }

  TEST_CASE("nn.module: train and eval reach every descendant") {
    Generator gen(1);
    Net net(gen);
    CHECK(net.block.head->is_training());
    net.eval();
    CHECK_FALSE(net.is_training());
    CHECK_FALSE(net.block.is_training());
    CHECK_FALSE(net.block.head->is_training());
    CHECK_FALSE(net.block.inner.is_training());
    net.block.train();
    CHECK_FALSE(net.is_training());
    CHECK(net.block.inner.is_training());
  }

  TEST_CASE("nn.module: zero_grad clears every parameter's gradient") {
    Generator gen(1);
    Net net(gen);
    auto x = ones<double>(Shape{5, 3});
    backward(sum(net.block.head->forward(net.block.inner.forward(x) * net.block.scale)));
    for (const auto& p : net.parameters()) CHECK(p.grad().defined());
    net.zero_grad();
    for (const auto& p : net.parameters()) CHECK_FALSE(p.grad().defined());
  }

  TEST_CASE("nn.module: state_dict round-trips through another module built with another seed") {
    Generator g1(1), g2(2);
    Net a(g1), b(g2);
    a.block.count.mutable_data()[0] = 7;
    const auto state = a.state_dict();
    CHECK(state.names() == std::vector<std::string>{"block.scale", "block.count", "block.head.weight", "block.head.bias",
                                                    "block.inner.weight", "block.inner.bias"});
    CHECK_FALSE(state.at("block.head.weight").requires_grad());
    CHECK_FALSE(allclose(b.block.inner.weight, a.block.inner.weight));
    const auto weight_before = b.block.inner.weight;
    b.load_state_dict(state);
    for (const auto& [name, t] : b.state_dict()) CHECK_MESSAGE(allclose(t, state.at(name), 0, 0), name);
    // Values are copied in; the parameter handles (which an optimizer may hold) are the same.
    CHECK(b.block.inner.weight.is_same(weight_before));
    CHECK(b.block.inner.weight.requires_grad());
    CHECK(b.block.count.item() == 7);
  }

  TEST_CASE("nn.module: load_state_dict names every bad key and both shapes, and loads nothing then") {
    Generator g1(1), g2(2);
    Net a(g1), b(g2);
    NamedTensors<double> bad;
    for (const auto& [name, t] : a.state_dict())
      if (name == "block.head.weight") bad.insert(name, zeros<double>(Shape{2, 4}));
      else if (name != "block.inner.bias") bad.insert(name, t);
    bad.insert("block.extra", zeros<double>(Shape{3}));
    const auto before = b.block.scale.to_vector();
    METAGRAD_CHECK_ERROR(b.load_state_dict(bad), "load_state_dict", "'block.head.weight'", "checkpoint has [2, 4]",
                         "module has [4, 2]", "missing key 'block.inner.bias'", "unexpected key 'block.extra'");
    CHECK(b.block.scale.to_vector() == before);
    // Non-strict tolerates missing and unexpected keys, never a shape mismatch.
    METAGRAD_CHECK_ERROR(b.load_state_dict(bad, false), "load_state_dict", "'block.head.weight'");
    NamedTensors<double> partial{{"block.scale", full<double>(Shape{2}, 3.0)}, {"other", zeros<double>(Shape{1})}};
    b.load_state_dict(partial, false);
    CHECK(b.block.scale.to_vector() == std::vector<double>{3.0, 3.0});
  }

  TEST_CASE("nn.module: bad registrations are errors that name the parameter") {
    struct Bad : nn::Module<double> {
      Tensor<double> w = ones<double>(Shape{2}), v = ones<double>(Shape{2}), undefined;
      void twice() {
        register_parameter("w", w);
        register_buffer("w", v);
      }
      void dotted() { register_parameter("a.b", w); }
      void missing() { register_parameter("u", undefined); }
      void non_leaf() {
        w.requires_grad_();
        v = w * w;
        register_parameter("v", v);
      }
    };
    Bad m;
    METAGRAD_CHECK_ERROR(m.twice(), "register_buffer", "'w'", "already registered");
    METAGRAD_CHECK_ERROR(m.dotted(), "register_parameter", "'a.b'");
    METAGRAD_CHECK_ERROR(m.missing(), "register_parameter", "'u'", "undefined");
    METAGRAD_CHECK_ERROR(m.non_leaf(), "register_parameter", "'v'", "leaf");
  }

  TEST_CASE("nn.module: NamedTensors keeps insertion order and rejects duplicates") {
    NamedTensors<double> d{{"b", ones<double>(Shape{1})}, {"a", zeros<double>(Shape{2})}};
    CHECK(d.names() == std::vector<std::string>{"b", "a"});
    CHECK(d.at("a").numel() == 2);
    CHECK(d.find("c") == nullptr);
    METAGRAD_CHECK_ERROR(d.insert("b", ones<double>(Shape{1})), "NamedTensors", "duplicate", "'b'");
    METAGRAD_CHECK_ERROR(d.at("c"), "NamedTensors", "'c'");
  }
}
