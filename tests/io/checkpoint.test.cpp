// SPDX-License-Identifier: MIT
#include <filesystem>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/io/checkpoint.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/optim/adam.hpp"
#include "metagrad/optim/sgd.hpp"
#include "test_util.hpp"

using namespace metagrad;
namespace fs = std::filesystem;

namespace {
/// A parameter, a child with a parameter, and a buffer: enough structure for dotted names.
struct Inner : nn::Module<double> {
  Tensor<double> bias = tensor<double>({0.1, -0.2, 0.3});
  Inner() { register_parameter("bias", bias); }
};
struct Net : nn::Module<double> {
  Tensor<double> weight;
  Tensor<double> running = zeros<double>(Shape{3});
  Inner inner;
  explicit Net(std::uint64_t seed) {
    Generator gen(seed);
    weight = randn<double>(Shape{3, 3}, gen);
    register_parameter("weight", weight);
    register_buffer("running", running);
    register_module("inner", inner);
  }
  Tensor<double> loss() const { return sum(square(tanh(add(weight, inner.bias)))); }
};

void train(Net& net, Optimizer<double>& opt, int steps) {
  for (int k = 0; k < steps; ++k) {
    opt.zero_grad();
    backward(net.loss());
    opt.step();
  }
}

struct TempFile {
  fs::path path = fs::temp_directory_path() / ("metagrad-checkpoint-" + std::to_string(::getpid()) + ".safetensors");
  ~TempFile() { fs::remove(path); }
};
}  // namespace

TEST_SUITE("io.checkpoint") {
  TEST_CASE("io.checkpoint: a resumed run equals an uninterrupted one bit for bit") {
    TempFile file;
    Net a(1);
    Adam<double> opt_a(a.parameters(), {.lr = 0.05, .weight_decay = 0.01});
    train(a, opt_a, 3);
    a.running.mutable_data()[1] = 7.0;  // a buffer survives too
    io::save_checkpoint(file.path, a, opt_a, {{"epoch", "3"}});

    const auto raw = io::load_safetensors(file.path);
    std::vector<std::string> names;
    for (const auto& [name, t] : raw.entries()) names.push_back(name);
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"model.inner.bias", "model.running", "model.weight", "optim.0.exp_avg",
                                            "optim.0.exp_avg_sq", "optim.0.step", "optim.1.exp_avg",
                                            "optim.1.exp_avg_sq", "optim.1.step"});

    Net b(2);  // different initial weights
    Adam<double> opt_b(b.parameters(), {.lr = 0.05, .weight_decay = 0.01});
    const auto metadata = io::load_checkpoint(file.path, b, opt_b);
    CHECK(metadata.at("epoch") == "3");
    CHECK(b.running.to_vector() == a.running.to_vector());
    train(a, opt_a, 2);
    train(b, opt_b, 2);
    CHECK(b.weight.to_vector() == a.weight.to_vector());
    CHECK(b.inner.bias.to_vector() == a.inner.bias.to_vector());
  }

  TEST_CASE("io.checkpoint: a checkpoint that does not fit changes neither the module nor the optimizer") {
    TempFile file;
    Net a(1);
    SGD<double> sgd(a.parameters(), {.lr = 0.1, .momentum = 0.9});
    train(a, sgd, 1);
    io::save_checkpoint(file.path, a, sgd);

    // An Adam cannot take SGD's momentum buffers: rejected before the module is touched.
    Net b(2);
    Adam<double> adam(b.parameters());
    train(b, adam, 1);
    const auto weight_before = b.weight.to_vector();
    const auto state_before = adam.state_dict().at("0.exp_avg").to_vector();
    METAGRAD_CHECK_ERROR(io::load_checkpoint(file.path, b, adam), "Adam", "load_state_dict", "momentum_buffer");
    CHECK(b.weight.to_vector() == weight_before);
    CHECK(adam.state_dict().at("0.exp_avg").to_vector() == state_before);

    // Foreign tensors and wrong element types are named.
    io::Checkpoint foreign(a.state_dict());
    io::save_safetensors(file.path, foreign);
    METAGRAD_CHECK_ERROR(io::load_checkpoint(file.path, b, adam), "load_checkpoint", "tensor 'inner.bias' belongs to neither");
    io::Checkpoint wrong_type;
    wrong_type.insert("model.weight", zeros<float>(Shape{3, 3}));
    io::save_safetensors(file.path, wrong_type);
    METAGRAD_CHECK_ERROR(io::load_checkpoint(file.path, b, adam), "load_checkpoint", "'model.weight' is F32, not F64");
  }
}
