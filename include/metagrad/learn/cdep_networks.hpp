// SPDX-License-Identifier: MIT
// CDEP's LeNet for 28×28 images (laura-rieger/deep-explanation-penalization mnist/ColorMNIST/model.py,
// DecoyMNIST/train_mnist_decoy.py), in one place for the examples and the benchmark:
// conv(c→20, 5) → ReLU → maxpool 2 → conv(20→50, 5) → ReLU → maxpool 2 → fc 800→hidden → ReLU →
// fc hidden→classes. ColorMNIST uses 3 channels and hidden 500, DecoyMNIST 1 channel and 256.
#pragma once
#include <cstdint>
#include <memory>

#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/conv.hpp"
#include "metagrad/nn/flatten.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/pool.hpp"
#include "metagrad/nn/sequential.hpp"

namespace metagrad::learn {

struct CdepLenetOptions {
  std::int64_t in_channels = 1;
  std::int64_t hidden = 256;
  std::int64_t classes = 10;
};

template <Floating T>
std::shared_ptr<nn::Sequential<T>> cdep_lenet(Generator& gen, const CdepLenetOptions& options = {}) {
  using namespace nn;
  check(options.in_channels > 0 && options.hidden > 0 && options.classes > 1, "cdep_lenet",
        "needs in_channels > 0, hidden > 0 and classes > 1, got ", options.in_channels, ", ", options.hidden, " and ",
        options.classes);
  auto net = std::make_shared<Sequential<T>>();
  net->template emplace_back<Conv2d<T>>(options.in_channels, 20, 5, gen);
  net->template emplace_back<ReLU<T>>();
  net->template emplace_back<MaxPool2d<T>>(2);
  net->template emplace_back<Conv2d<T>>(20, 50, 5, gen);
  net->template emplace_back<ReLU<T>>();
  net->template emplace_back<MaxPool2d<T>>(2);
  net->template emplace_back<Flatten<T>>();
  net->template emplace_back<Linear<T>>(800, options.hidden, gen);
  net->template emplace_back<ReLU<T>>();
  net->template emplace_back<Linear<T>>(options.hidden, options.classes, gen);
  return net;
}

}  // namespace metagrad::learn
