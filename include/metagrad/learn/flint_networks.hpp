// SPDX-License-Identifier: MIT
// FLINT's networks for 28×28 grey images (MNIST, Fashion-MNIST), from jayneelparekh/FLINT
// networks.py, in one place for the example, the tests and the benchmark: f = Net2_MNIST_old split
// after its conv block (body → the hidden layer [N, 32, 14, 14] that Φ reads, head → logits),
// Φ = attr_MNIST (J attributes), d = decode_MNIST, h = explainer (its Dropout(0.01) is Flint's
// h_dropout). f is built first, so one generator state gives every condition the same f.
#pragma once
#include <cstdint>
#include <memory>

#include "metagrad/learn/flint.hpp"
#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/conv.hpp"
#include "metagrad/nn/dropout.hpp"
#include "metagrad/nn/flatten.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/pool.hpp"
#include "metagrad/nn/sequential.hpp"

namespace metagrad::learn {

template <Floating T>
using FlintMnist = Flint<T, SplitPredictor<T>>;

struct FlintMnistOptions {
  std::int64_t attributes = 25;  ///< J (24 for QuickDraw in the paper)
  std::int64_t classes = 10;
  double h_dropout = 0.01;
};

template <Floating T>
std::shared_ptr<FlintMnist<T>> flint_mnist(Generator& gen, const FlintMnistOptions& options = {}) {
  using namespace nn;
  check(options.attributes > 0 && options.classes > 1, "flint_mnist", "needs attributes > 0 and classes > 1, got ",
        options.attributes, " and ", options.classes);
  auto body = std::make_shared<Sequential<T>>();
  body->template emplace_back<Conv2d<T>>(1, 16, 3, gen, Conv2dOptions{.padding = 1});
  body->template emplace_back<ReLU<T>>();
  body->template emplace_back<Conv2d<T>>(16, 32, 3, gen, Conv2dOptions{.padding = 1});
  body->template emplace_back<MaxPool2d<T>>(2);
  body->template emplace_back<Dropout<T>>(0.5, gen);
  body->template emplace_back<ReLU<T>>();
  auto head = std::make_shared<Sequential<T>>();
  head->template emplace_back<Flatten<T>>();
  head->template emplace_back<Linear<T>>(6272, 128, gen);
  head->template emplace_back<ReLU<T>>();
  head->template emplace_back<Dropout<T>>(0.5, gen);
  head->template emplace_back<Linear<T>>(128, options.classes, gen);
  auto f = std::make_shared<SplitPredictor<T>>(body, head);
  auto phi = std::make_shared<Sequential<T>>();
  phi->template emplace_back<Conv2d<T>>(32, 64, 3, gen, Conv2dOptions{.padding = 1});
  phi->template emplace_back<LeakyReLU<T>>();
  phi->template emplace_back<AdaptiveAvgPool2d<T>>(3);
  phi->template emplace_back<Flatten<T>>();
  phi->template emplace_back<Linear<T>>(576, options.attributes, gen);
  phi->template emplace_back<LeakyReLU<T>>();
  auto d = std::make_shared<Sequential<T>>();
  d->template emplace_back<Linear<T>>(options.attributes, 98, gen);
  d->template emplace_back<Unflatten<T>>(1, std::vector<std::int64_t>{2, 7, 7});
  const ConvTranspose2dOptions up{.stride = 2, .padding = 1, .output_padding = 1};
  d->template emplace_back<ConvTranspose2d<T>>(2, 8, 3, gen, up);
  d->template emplace_back<ReLU<T>>();
  d->template emplace_back<ConvTranspose2d<T>>(8, 1, 3, gen, up);
  d->template emplace_back<ReLU<T>>();
  auto h = std::make_shared<Linear<T>>(options.attributes, options.classes, gen);
  return std::make_shared<FlintMnist<T>>(f, phi, d, h, options.h_dropout, gen);
}

}  // namespace metagrad::learn
