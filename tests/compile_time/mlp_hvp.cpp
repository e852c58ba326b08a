// SPDX-License-Identifier: MIT
// A typical consumer TU for measuring include cost: the umbrella header, a three-layer MLP's loss,
// its gradient and a Hessian-vector product. Its output is the same in header-only and in
// extern-template mode (tests/compile_time/CMakeLists.txt compares them).
#include <cmath>
#include <cstdio>

#include <metagrad/metagrad.hpp>

using namespace metagrad;

int main() {
  Generator gen(1);
  const auto x = randn<double>({64, 8}, gen);
  const auto y = randint(0, 4, {64}, gen);
  const std::vector w = {randn<double>({32, 8}, gen), zeros<double>({32}), randn<double>({32, 32}, gen),
                         zeros<double>({32}),         randn<double>({4, 32}, gen), zeros<double>({4})};
  auto loss = [&](const std::vector<TensorD>& p) {
    const auto h = relu(linear(tanh(linear(x, p[0], p[1])), p[2], p[3]));
    return cross_entropy(linear(h, p[4], p[5]), y);
  };
  std::vector<TensorD> v;
  for (const auto& p : w) v.push_back(randn<double>(p.shape(), gen));
  const auto g = grad(loss, w);
  const auto hv = hvp(loss, w, v);
  for (std::size_t i = 0; i < w.size(); ++i)
    std::printf("w[%zu] |dL/dw| %.10f |Hv| %.10f\n", i, std::sqrt(sum(square(g[i])).item()),
                std::sqrt(sum(square(hv[i])).item()));
  std::printf("loss %.10f\n", loss(w).item());
}
