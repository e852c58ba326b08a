// SPDX-License-Identifier: MIT
// The example in README.md, verbatim between the markers, built and run by ctest so it cannot rot.
// README-BEGIN
#include <cmath>
#include <cstdio>

#include <metagrad/functional/transforms.hpp>
#include <metagrad/ops/linalg.hpp>
#include <metagrad/ops/loss.hpp>
#include <metagrad/ops/unary.hpp>

using namespace metagrad;

int main() {
  Generator gen(0);
  const auto x = randn<double>({32, 4}, gen);  // 32 points with 4 features
  const auto y = randint(0, 3, {32}, gen);     // their labels in {0, 1, 2}
  const std::vector w = {randn<double>({16, 4}, gen), zeros<double>({16}),  // layer 1: weight [out, in], bias
                         randn<double>({3, 16}, gen), zeros<double>({3})};  // layer 2
  auto loss = [&](const std::vector<TensorD>& p) {  // the MLP's loss as a function of its weights
    return cross_entropy(linear(tanh(linear(x, p[0], p[1])), p[2], p[3]), y);
  };
  std::vector<TensorD> v;  // a direction in weight space
  for (const auto& p : w) v.push_back(randn<double>(p.shape(), gen));

  const auto g = grad(loss, w);     // dL/dw, one tensor per weight
  const auto hv = hvp(loss, w, v);  // H v = d/dw <dL/dw, v>: a gradient of a gradient
  auto norm = [](const TensorD& t) { return std::sqrt(sum(square(t)).item()); };
  std::printf("loss %.4f\n", loss(w).item());
  for (std::size_t i = 0; i < w.size(); ++i)
    std::printf("w[%zu] %-8s |dL/dw| %.4f  |Hv| %.4f\n", i, w[i].shape().str().c_str(), norm(g[i]), norm(hv[i]));
}
// README-END
