// SPDX-License-Identifier: MIT
#include "metagrad/learn/erm.hpp"
#include "metagrad/ops/loss.hpp"
#include "loss_fixtures.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::learn;
using namespace metagrad::learn_test;

TEST_SUITE("learn.erm") {
  TEST_CASE("learn.erm: the loss is the mean cross entropy, over a model given by reference or pointer") {
    Generator gen(1);
    auto net = tanh_mlp(4, 5, 3, gen);
    const auto b = random_batch(6, 4, 3, gen);
    Erm<double> erm;
    const double expected = cross_entropy(net->forward(b.x), b.y).item();
    CHECK(erm(net, b).item() == doctest::Approx(expected).epsilon(1e-14));
    CHECK(erm(*net, b).item() == doctest::Approx(expected).epsilon(1e-14));
    auto lambda = [&](const Tensor<double>& x) { return net->forward(x); };
    CHECK(erm(lambda, b).item() == doctest::Approx(expected).epsilon(1e-14));
    CHECK(erm.name() == "erm");
    CHECK(erm.setting().empty());
  }

  TEST_CASE("learn.erm: the gradient in the parameters passes gradcheck to second order") {
    Generator gen(2);
    auto net = tanh_mlp(3, 4, 3, gen);
    const auto b = random_batch(4, 3, 3, gen);
    Erm<double> erm;
    const auto result = gradcheck(loss_of_params(net, erm, b), net->parameters(), {.order = 2});
    CHECK_MESSAGE(result.ok, result.report);
  }

  TEST_CASE("learn.erm: bad batches name the loss and the shapes") {
    Generator gen(3);
    auto net = tanh_mlp(4, 5, 3, gen);
    auto b = random_batch(3, 4, 3, gen);
    Erm<double> erm;
    auto bad_labels = b;
    bad_labels.y = from_vector<std::int64_t>({0, 3, 1}, Shape{3});
    METAGRAD_CHECK_ERROR(erm(net, bad_labels), "Erm", "label 3", "[3, 3]");
    auto short_labels = b;
    short_labels.y = from_vector<std::int64_t>({0, 1}, Shape{2});
    METAGRAD_CHECK_ERROR(erm(net, short_labels), "Erm", "[2]", "[3, 4]");
    auto no_x = b;
    no_x.x = Tensor<double>();
    METAGRAD_CHECK_ERROR(erm(net, no_x), "Erm", "batch of inputs");
    auto bad_groups = b;
    bad_groups.group = from_vector<std::int64_t>({0}, Shape{1});
    METAGRAD_CHECK_ERROR(erm(net, bad_groups), "Erm", "groups");
    // ERM ignores the mask, so a batch without one is fine.
    auto no_mask = b;
    no_mask.mask = Tensor<double>();
    CHECK(std::isfinite(erm(net, no_mask).item()));
  }
}
