// SPDX-License-Identifier: MIT
// The device seam: a tensor on a device without kernels (cuda in this CPU-only build) gets an
// error naming the op, the device and "no cuda kernel" from every op, before any kernel runs.
#include <vector>

#include "metagrad/backend/dispatch.hpp"
#include "metagrad/ops/binary.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/softmax.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/optim/adam.hpp"
#include "metagrad/optim/sgd.hpp"
#include "test_util.hpp"

using namespace metagrad;

namespace backend_dispatch_test {
/// A copy of the CPU tensor x that claims to live on `d`. Its values are still in host memory, which is what
/// makes the test meaningful: a kernel that ran anyway would compute (wrongly) instead of failing.
Tensor<double> claiming(const Tensor<double>& x, Device d) {
  Tensor<double> t = metagrad::clone(x.detach());
  t.impl()->device = d;
  return t;
}
}  // namespace backend_dispatch_test

using backend_dispatch_test::claiming;

TEST_SUITE("backend.dispatch") {
  TEST_CASE("backend.dispatch: ops on a device without kernels fail naming the op and the device") {
    const auto host = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
    const auto x = claiming(host, Device::cuda(0));
    const auto w = claiming(from_vector<double>({1, 0, 0, 1, 1, 1}, {3, 2}), Device::cuda(0));
    METAGRAD_CHECK_ERROR(add(x, x), "add: ", "no cuda kernel", "cuda:0");
    METAGRAD_CHECK_ERROR(exp(x), "exp: ", "no cuda kernel", "cuda:0");
    METAGRAD_CHECK_ERROR(matmul(x, w), "mm: ", "no cuda kernel", "cuda:0");
    METAGRAD_CHECK_ERROR(sum(x), "sum: ", "no cuda kernel", "cuda:0");
    METAGRAD_CHECK_ERROR(sum(x, {1}), "sum: ", "no cuda kernel");
    METAGRAD_CHECK_ERROR(softmax(x, 1), "softmax: ", "no cuda kernel");
    METAGRAD_CHECK_ERROR(relu(claiming(host, Device::cuda(3))), "relu: ", "no cuda kernel", "cuda:3");
    METAGRAD_CHECK_ERROR(mse_loss(x, x), "mse_loss: ", "no cuda kernel");
    METAGRAD_CHECK_ERROR(permute(x, {1, 0}), "permute: ", "no cuda kernel");
    // The inputs were not touched: nothing ran.
    CHECK(x.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
  }

  TEST_CASE("backend.dispatch: tensors on different devices are an error naming the op and both devices") {
    const auto a = from_vector<double>({1, 2, 3}, {3});
    const auto b = claiming(a, Device::cuda(1));
    METAGRAD_CHECK_ERROR(add(a, b), "add: ", "different devices", "cpu", "cuda:1");
    METAGRAD_CHECK_ERROR(mul(a, b), "mul: ", "different devices", "cpu, cuda:1");
    // The first tensor's device picks the kernel; there is none on cuda.
    METAGRAD_CHECK_ERROR(mul(b, a), "mul: ", "no cuda kernel", "cuda:1");
    METAGRAD_CHECK_ERROR(where(gt(a, 2.0), a, b), "where: ", "different devices");
  }

  TEST_CASE("backend.dispatch: optimizers reach their kernels through the seam") {
    auto p = claiming(from_vector<double>({1, 2}, {2}), Device::cuda(0)).requires_grad_();
    p.set_grad(claiming(from_vector<double>({0.5, 0.5}, {2}), Device::cuda(0)));
    Adam<double> adam({p});
    METAGRAD_CHECK_ERROR(adam.step(), "Adam: ", "no cuda kernel", "cuda:0");
    SGD<double> sgd({p}, {.lr = 0.1});
    METAGRAD_CHECK_ERROR(sgd.step(), "SGD: ", "no cuda kernel", "cuda:0");
    CHECK(p.to_vector() == std::vector<double>{1, 2});
  }

  TEST_CASE("backend.dispatch: on_device runs the CPU kernel on the CPU and nothing elsewhere") {
    int calls = 0;
    CHECK(backend::on_device("probe", Device::cpu(), [&] { return ++calls; }) == 1);
    METAGRAD_CHECK_ERROR(backend::on_device("probe", Device::cuda(2), [&] { return ++calls; }), "probe: ",
                         "no cuda kernel", "cuda:2");
    CHECK(calls == 1);
    const auto a = from_vector<double>({1}, {1});
    CHECK(backend::common_device("probe", a, a, a) == Device::cpu());
    METAGRAD_CHECK_ERROR(backend::common_device("probe", a, a, claiming(a, Device::cuda(0))), "probe: ",
                         "cpu, cpu, cuda:0");
  }

  TEST_CASE("backend.dispatch: on the CPU the facade returns exactly the CPU kernel's result") {
    const auto x = from_vector<double>({-800, -1, 0, 2, 30}, {5});
    CHECK(backend::exp(x).to_vector() == cpu::exp(x).to_vector());
    CHECK(exp(x).to_vector() == cpu::exp(x).to_vector());
    CHECK(exp(x).to_vector()[0] == 0.0);  // exactly 0 where exp underflows (exp0)
    CHECK(add(x, x).to_vector() == std::vector<double>{-1600, -2, 0, 4, 60});
    CHECK(sum(x).item() == -769.0);
  }
}
