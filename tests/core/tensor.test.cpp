// SPDX-License-Identifier: MIT
#include "metagrad/core/creation.hpp"
#include "metagrad/ops/view.hpp"
#include "test_util.hpp"

using namespace metagrad;

TEST_SUITE("core.tensor") {
  TEST_CASE("core.tensor: shape queries and element access") {
    const auto t = tensor<double>({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
    CHECK(t.defined());
    CHECK(t.shape() == (Shape{2, 3}));
    CHECK(t.dim() == 2);
    CHECK(t.numel() == 6);
    CHECK(t.size(0) == 2);
    CHECK(t.size(-1) == 3);
    CHECK(t(1, 2) == 6.0);
    CHECK(t.at({0, 1}) == 2.0);
    CHECK(t.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
    CHECK(t.values().size() == 6);
    CHECK(scalar_tensor<double>(2.5).item() == 2.5);
    CHECK(t.device() == Device::cpu());
  }

  TEST_CASE("core.tensor: bad access is an error naming the shape") {
    const auto t = tensor<float>({{1, 2, 3}, {4, 5, 6}});
    METAGRAD_CHECK_ERROR(t.item(), "item", "[2, 3]", "6 elements");
    METAGRAD_CHECK_ERROR(t(2, 0), "at", "index 2", "dim 0", "[2, 3]");
    METAGRAD_CHECK_ERROR(t(0, -1), "at", "index -1");
    METAGRAD_CHECK_ERROR(t(0), "at", "rank 1", "[2, 3]");
    METAGRAD_CHECK_ERROR(t.size(2), "Tensor::size", "dim 2", "rank 2");
    METAGRAD_CHECK_ERROR(Tensor<float>().shape(), "undefined tensor");
  }

  TEST_CASE("core.tensor: copies are handles to the same tensor") {
    auto a = tensor<double>({1.0, 2.0});
    auto b = a;
    CHECK(b.is_same(a));
    b.mutable_data()[0] = 7.0;
    CHECK(a(0) == 7.0);
    CHECK_FALSE(tensor<double>({7.0, 2.0}).is_same(a));
  }

  TEST_CASE("core.tensor: reshape and detach share storage; detach starts a new handle") {
    auto a = tensor<double>({{1.0, 2.0}, {3.0, 4.0}}).requires_grad_();
    const auto r = reshape(a, {4});
    CHECK(r.data() == a.data());
    const auto d = a.detach();
    CHECK(d.data() == a.data());
    CHECK_FALSE(d.is_same(a));
    CHECK_FALSE(d.requires_grad());
    CHECK(a.requires_grad());
  }

  TEST_CASE("core.tensor: mutable_data bumps the version, fresh_data and reads do not") {
    auto a = zeros<double>(Shape{3});
    const auto v0 = a.version();
    (void)a.data();
    (void)a.fresh_data();
    CHECK(a.version() == v0);
    a.mutable_data()[1] = 1.0;
    CHECK(a.version() == v0 + 1);
    auto view = a.detach();  // the version belongs to the storage, so views see it
    view.mutable_data();
    CHECK(a.version() == v0 + 2);
  }

  TEST_CASE("core.tensor: grad slot accepts only gradients of its shape") {
    auto a = zeros<double>(Shape{2}).requires_grad_();
    CHECK_FALSE(a.grad().defined());
    a.set_grad(ones<double>(Shape{2}));
    CHECK(a.grad()(1) == 1.0);
    METAGRAD_CHECK_ERROR(a.set_grad(ones<double>(Shape{3})), "set_grad", "[3]", "[2]");
    a.zero_grad();
    CHECK_FALSE(a.grad().defined());
  }

  TEST_CASE("core.tensor: element types") {
    CHECK(std::string(dtype_name<float>()) == "float32");
    CHECK(std::string(dtype_name<double>()) == "float64");
    CHECK(std::string(dtype_name<std::int64_t>()) == "int64");
    const IndexTensor idx = arange<std::int64_t>(4);
    CHECK(idx(3) == 3);
    CHECK_FALSE(idx.requires_grad());
  }
}
