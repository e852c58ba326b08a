// SPDX-License-Identifier: MIT
// Dataset, random_split and Loader: subsets keep rows together, splits partition, and batching
// covers every example exactly once per epoch in an order reproducible from (seed, epoch).
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "metagrad/data/dataset.hpp"
#include "test_util.hpp"

namespace md = metagrad::data;
using metagrad::IndexTensor;
using metagrad::Shape;
using metagrad::Tensor;

namespace {

/// n examples of shape [2, 3]; every input element of example i is i + k/10, label i % 7, mask i % 2.
md::Dataset<float> numbered(std::int64_t n) {
  md::Dataset<float> ds{Tensor<float>::empty(Shape{n, 2, 3}), IndexTensor::empty(Shape{n}),
                        Tensor<float>::empty(Shape{n, 2, 3})};
  for (std::int64_t i = 0; i < n; ++i) {
    ds.labels.fresh_data()[i] = i % 7;
    for (int k = 0; k < 6; ++k) {
      ds.inputs.fresh_data()[i * 6 + k] = static_cast<float>(i) + k / 10.0f;
      ds.masks.fresh_data()[i * 6 + k] = static_cast<float>(i % 2);
    }
  }
  return ds;
}

/// The example number of row r (recovered from its inputs), checking the row is intact.
std::int64_t example_of(const md::Dataset<float>& ds, std::int64_t r) {
  const auto i = static_cast<std::int64_t>(ds.inputs.data()[r * 6]);
  for (int k = 0; k < 6; ++k) REQUIRE(ds.inputs.data()[r * 6 + k] == static_cast<float>(i) + k / 10.0f);
  REQUIRE(ds.labels.data()[r] == i % 7);
  REQUIRE(ds.masks.data()[r * 6 + 5] == static_cast<float>(i % 2));
  return i;
}

std::vector<std::int64_t> epoch_examples(const md::Loader<md::Dataset<float>>& loader, std::int64_t e,
                                         std::vector<std::int64_t>* sizes = nullptr) {
  std::vector<std::int64_t> seen;
  for (const auto& batch : loader.epoch(e)) {
    if (sizes) sizes->push_back(batch.size());
    for (std::int64_t r = 0; r < batch.size(); ++r) seen.push_back(example_of(batch, r));
  }
  return seen;
}

}  // namespace

TEST_SUITE("data.dataset") {
  TEST_CASE("data.Dataset: subset copies whole rows in the given order") {
    const auto ds = numbered(10);
    const std::vector<std::int64_t> idx{7, 2, 2, 9};
    const auto sub = ds.subset(idx);
    CHECK(sub.inputs.shape() == Shape{4, 2, 3});
    for (std::int64_t r = 0; r < 4; ++r) CHECK(example_of(sub, r) == idx[static_cast<std::size_t>(r)]);
    const std::vector<std::int64_t> bad{3, 10};
    METAGRAD_CHECK_ERROR(ds.subset(bad), "Dataset::subset", "index 10 is out of range for 10 rows");
    auto broken = ds;
    broken.labels = IndexTensor::empty(Shape{9});
    METAGRAD_CHECK_ERROR(broken.subset(idx), "Dataset::subset", "[10, 2, 3]", "[9]");
    broken = ds;
    broken.masks = Tensor<float>::empty(Shape{10, 3, 2});
    METAGRAD_CHECK_ERROR(broken.subset(idx), "masks of shape [10, 3, 2]");
  }

  TEST_CASE("data.random_split: disjoint parts of the asked sizes covering everything, by seed") {
    const auto ds = numbered(50);
    const auto parts = md::random_split(ds, {30, 15, 5}, 3);
    REQUIRE(parts.size() == 3);
    CHECK(parts[0].size() == 30);
    CHECK(parts[1].size() == 15);
    CHECK(parts[2].size() == 5);
    std::multiset<std::int64_t> all;
    for (const auto& p : parts)
      for (std::int64_t r = 0; r < p.size(); ++r) all.insert(example_of(p, r));
    CHECK(all == [] { std::multiset<std::int64_t> s; for (int i = 0; i < 50; ++i) s.insert(i); return s; }());
    const auto again = md::random_split(ds, {30, 15, 5}, 3);
    CHECK(again[1].labels.to_vector() == parts[1].labels.to_vector());
    CHECK(again[1].inputs.to_vector() == parts[1].inputs.to_vector());
    const auto other = md::random_split(ds, {30, 15, 5}, 4);
    CHECK(other[0].inputs.to_vector() != parts[0].inputs.to_vector());
    METAGRAD_CHECK_ERROR(md::random_split(ds, {30, 15}, 3), "random_split", "add up to 45", "50 examples");
  }

  TEST_CASE("data.Loader: every example once per epoch, reproducible by seed, new order each epoch") {
    const auto ds = numbered(23);
    const md::Loader loader(ds, 5, 11);
    CHECK(loader.batches_per_epoch() == 5);
    std::vector<std::int64_t> sizes;
    const auto e0 = epoch_examples(loader, 0, &sizes);
    CHECK(sizes == std::vector<std::int64_t>{5, 5, 5, 5, 3});
    auto sorted = e0;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> expect(23);
    std::iota(expect.begin(), expect.end(), 0);
    CHECK(sorted == expect);
    CHECK(e0 != expect);  // shuffled (23! orders; the identity has probability ~4e-23)
    const auto e1 = epoch_examples(loader, 1);
    CHECK(e1 != e0);
    // Same seed, fresh loader, epochs asked out of order: same orders.
    const md::Loader same(ds, 5, 11);
    CHECK(epoch_examples(same, 1) == e1);
    CHECK(epoch_examples(same, 0) == e0);
    CHECK(epoch_examples(md::Loader(ds, 5, 12), 0) != e0);
  }

  TEST_CASE("data.Loader: no shuffling keeps the order; drop_last drops the short batch") {
    const auto ds = numbered(23);
    std::vector<std::int64_t> expect(23);
    std::iota(expect.begin(), expect.end(), 0);
    CHECK(epoch_examples(md::Loader(ds, 4, 0, /*shuffle=*/false), 3) == expect);
    const md::Loader drop(ds, 5, 1, true, /*drop_last=*/true);
    std::vector<std::int64_t> sizes;
    const auto seen = epoch_examples(drop, 0, &sizes);
    CHECK(sizes == std::vector<std::int64_t>{5, 5, 5, 5});
    CHECK(std::set<std::int64_t>(seen.begin(), seen.end()).size() == 20);
    METAGRAD_CHECK_ERROR(md::Loader(ds, 0, 1), "Loader", "batch_size must be > 0");
  }

  TEST_CASE("data.permutation: a permutation, deterministic per seed") {
    const auto p = md::permutation(1000, 5);
    auto s = p;
    std::sort(s.begin(), s.end());
    for (std::int64_t i = 0; i < 1000; ++i) CHECK(s[static_cast<std::size_t>(i)] == i);
    CHECK(md::permutation(1000, 5) == p);
    CHECK(md::permutation(1000, 6) != p);
    CHECK(md::permutation(0, 5).empty());
  }
}
