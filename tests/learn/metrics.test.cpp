// SPDX-License-Identifier: MIT
// learn/metrics: per-group, macro and worst-group accuracy on hand-counted cases (a missing group
// included), evaluate() against a direct forward, and the sample std of summarize().
#include <cmath>
#include <cstdint>
#include <vector>

#include "metagrad/core/creation.hpp"
#include "metagrad/learn/metrics.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/ops/loss.hpp"
#include "test_util.hpp"

using namespace metagrad;

namespace metrics_test {

TEST_CASE("learn.metrics: group, macro and worst-group accuracy on a hand-counted case") {
  // group 0: 2 of 3 right, group 1: 1 of 1, group 2: 0 of 2.
  const std::vector<std::int64_t> pred{0, 1, 1, 2, 0, 0}, labels{0, 1, 2, 2, 1, 1}, groups{0, 0, 0, 1, 2, 2};
  const auto a = learn::group_accuracy(pred, labels, groups);
  CHECK(a.n == 6);
  CHECK(a.acc == doctest::Approx(3.0 / 6));
  REQUIRE(a.group_acc.size() == 3);
  CHECK(a.group_acc[0] == doctest::Approx(2.0 / 3));
  CHECK(a.group_acc[1] == doctest::Approx(1.0));
  CHECK(a.group_acc[2] == doctest::Approx(0.0));
  CHECK(a.group_count == std::vector<std::int64_t>{3, 1, 2});
  // Macro is the mean of the groups, not the micro accuracy: (2/3 + 1 + 0) / 3 = 5/9 ≠ 1/2.
  CHECK(a.macro_acc == doctest::Approx(5.0 / 9));
  CHECK(a.worst_group_acc == doctest::Approx(0.0));
  const auto m = a.metrics(true);
  CHECK(m.at("worst_group_acc") == doctest::Approx(0.0));
  CHECK(m.at("group_1_acc") == doctest::Approx(1.0));
}

TEST_CASE("learn.metrics: a group with no examples is left out of macro and worst-group accuracy") {
  // 4 groups declared, group 2 absent: its accuracy is NaN and it neither counts as 0 (worst) nor
  // drags the mean down.
  const std::vector<std::int64_t> pred{0, 0, 1, 3}, labels{0, 1, 1, 3}, groups{0, 0, 1, 3};
  const auto a = learn::group_accuracy(pred, labels, groups, 4);
  REQUIRE(a.group_acc.size() == 4);
  CHECK(std::isnan(a.group_acc[2]));
  CHECK(a.group_count[2] == 0);
  CHECK(a.macro_acc == doctest::Approx((0.5 + 1.0 + 1.0) / 3));
  CHECK(a.worst_group_acc == doctest::Approx(0.5));
  CHECK_FALSE(a.metrics(true).contains("group_2_acc"));
}

TEST_CASE("learn.metrics: without groups the label is the group, and logits are argmaxed") {
  // Classes as groups, as robust_mlx's Decoy-MNIST: class 0 1/2 right, class 1 2/2 right.
  const auto logits = tensor<double>({{2, 1}, {0, 3}, {0, 5}, {-1, 0}});  // pred 0, 1, 1, 1
  const auto labels = tensor<std::int64_t>({0, 0, 1, 1});
  const auto a = learn::group_accuracy(logits, labels);
  CHECK(a.acc == doctest::Approx(0.75));
  CHECK(a.macro_acc == doctest::Approx(0.75));
  CHECK(a.worst_group_acc == doctest::Approx(0.5));
  // Explicit groups change the answer: both wrong-prone examples in one group.
  const auto b = learn::group_accuracy(logits, labels, tensor<std::int64_t>({1, 1, 0, 0}));
  CHECK(b.worst_group_acc == doctest::Approx(0.5));
  CHECK(b.group_acc[0] == doctest::Approx(1.0));
}

TEST_CASE("learn.metrics: bad input names the function and the sizes") {
  const std::vector<std::int64_t> three{0, 1, 2}, two{0, 1};
  METAGRAD_CHECK_ERROR(learn::group_accuracy(three, two), "group_accuracy", "3 predictions for 2 labels");
  METAGRAD_CHECK_ERROR(learn::group_accuracy(three, three, two), "group_accuracy", "2 group ids for 3 labels");
  METAGRAD_CHECK_ERROR(learn::group_accuracy(two, two, std::vector<std::int64_t>{0, 5}, 3), "group_accuracy", "5");
  METAGRAD_CHECK_ERROR(learn::group_accuracy(std::vector<std::int64_t>{}, std::vector<std::int64_t>{}),
                       "group_accuracy", "at least one");
}

TEST_CASE("learn.metrics: evaluate matches one full forward pass, in batches that do not divide N") {
  Generator gen(3);
  nn::Linear<double> model(5, 3, gen);
  data::Dataset<double> d{randn<double>(Shape{11, 5}, gen), randint(0, 3, Shape{11}, gen), {}};
  const auto groups = randint(0, 2, Shape{11}, gen);
  const auto logits = model(d.inputs);
  const auto want = learn::group_accuracy(logits, d.labels, groups);
  const double want_loss = cross_entropy(logits, d.labels).item();
  model.train(true);
  const auto got = learn::evaluate(model, d, 4, groups);
  CHECK(model.is_training());  // restored after the eval-mode pass
  CHECK(got.accuracy.acc == doctest::Approx(want.acc));
  CHECK(got.accuracy.worst_group_acc == doctest::Approx(want.worst_group_acc));
  CHECK(got.accuracy.macro_acc == doctest::Approx(want.macro_acc));
  CHECK(got.loss == doctest::Approx(want_loss).epsilon(1e-12));
  const auto m = got.metrics("valid_");
  CHECK(m.at("valid_loss") == doctest::Approx(want_loss));
  CHECK(m.at("valid_worst_group_acc") == doctest::Approx(want.worst_group_acc));
  METAGRAD_CHECK_ERROR(m.at("valid_bogus"), "Metrics", "valid_bogus", "valid_acc");
  METAGRAD_CHECK_ERROR(learn::evaluate(model, d, 0), "evaluate", "batch_size");
}

TEST_CASE("learn.metrics: summarize gives the mean and the sample (n - 1) standard deviation") {
  const auto s = learn::summarize({1, 2, 3, 4});
  CHECK(s.mean == doctest::Approx(2.5));
  CHECK(s.std == doctest::Approx(std::sqrt(5.0 / 3.0)));  // population std would be sqrt(5/4)
  CHECK(s.values.size() == 4);
  CHECK(learn::summarize({0.7}).std == 0.0);
  METAGRAD_CHECK_ERROR(learn::summarize({}), "summarize");
}

}  // namespace metrics_test
