// SPDX-License-Identifier: MIT
// Classification metrics for learning from explanations: accuracy, accuracy per group (micro within
// each group), macro accuracy (the mean over the groups present) and worst-group accuracy (the
// minimum over them), the numbers robust_mlx selects and reports on; evaluate() computes them for a
// model over a data set in batches under no-grad; summarize() gives mean and sample std over seeds.
#pragma once
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/core/error.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/data/dataset.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/shape.hpp"

namespace metagrad::learn {

/// Named scalar metrics in the order they were added ("valid_acc", "valid_worst_group_acc", ...).
class Metrics {
 public:
  using value_type = std::pair<std::string, double>;

  /// Sets `name` (replacing an earlier value under the same name, keeping its place).
  void set(std::string_view name, double value) {
    for (auto& [n, v] : items_)
      if (n == name) {
        v = value;
        return;
      }
    items_.emplace_back(std::string(name), value);
  }
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  const double* find(std::string_view name) const {
    for (const auto& [n, v] : items_)
      if (n == name) return &v;
    return nullptr;
  }
  /// The value of `name`; throws listing the names there are when it is missing.
  double at(std::string_view name) const {
    if (const double* v = find(name)) return *v;
    std::string names;
    for (const auto& [n, v] : items_) names += (names.empty() ? "" : ", ") + n;
    fail("Metrics", "no metric named '", name, "' (have: ", names.empty() ? "none" : names, ")");
  }
  /// Every metric again with `prefix` in front of its name ("valid_" + "acc").
  Metrics prefixed(std::string_view prefix) const {
    Metrics out;
    for (const auto& [n, v] : items_) out.set(std::string(prefix) + n, v);
    return out;
  }
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<value_type> items_;
};

/// Accuracy overall and per group. Groups are 0..num_groups-1; a group without examples has
/// count 0 and accuracy NaN and is left out of macro_acc and worst_group_acc (robust_mlx averages
/// and minimizes over the groups it saw).
struct GroupAccuracy {
  std::int64_t n = 0;
  double acc = 0;
  double macro_acc = 0;
  double worst_group_acc = 0;
  std::vector<std::int64_t> group_count;
  std::vector<double> group_acc;

  /// acc, macro_acc, worst_group_acc (and group_<g>_acc for each group present when per_group).
  Metrics metrics(bool per_group = false) const {
    Metrics m;
    m.set("acc", acc);
    m.set("macro_acc", macro_acc);
    m.set("worst_group_acc", worst_group_acc);
    if (per_group)
      for (std::size_t g = 0; g < group_acc.size(); ++g)
        if (group_count[g] > 0) m.set("group_" + std::to_string(g) + "_acc", group_acc[g]);
    return m;
  }
};

/// From predicted classes, labels and groups (all of one length; `groups` empty: group = label).
/// num_groups 0 means 1 + the largest group id.
inline GroupAccuracy group_accuracy(std::span<const std::int64_t> pred, std::span<const std::int64_t> labels,
                                    std::span<const std::int64_t> groups = {}, std::int64_t num_groups = 0) {
  constexpr const char* op = "group_accuracy";
  check(pred.size() == labels.size(), op, pred.size(), " predictions for ", labels.size(), " labels");
  check(groups.empty() || groups.size() == labels.size(), op, groups.size(), " group ids for ", labels.size(),
        " labels");
  check(!labels.empty(), op, "needs at least one example");
  const auto group_of = groups.empty() ? labels : groups;
  std::int64_t top = -1;
  for (auto g : group_of) {
    check(g >= 0, op, "group id ", g, " is negative");
    top = std::max(top, g);
  }
  check(num_groups == 0 || num_groups > top, op, "group id ", top, " is outside 0..", num_groups - 1);
  const auto k = static_cast<std::size_t>(num_groups == 0 ? top + 1 : num_groups);
  GroupAccuracy out;
  out.n = static_cast<std::int64_t>(labels.size());
  out.group_count.assign(k, 0);
  std::vector<std::int64_t> right(k, 0);
  std::int64_t correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto g = static_cast<std::size_t>(group_of[i]);
    const bool ok = pred[i] == labels[i];
    correct += ok;
    right[g] += ok;
    ++out.group_count[g];
  }
  out.acc = static_cast<double>(correct) / static_cast<double>(out.n);
  out.group_acc.assign(k, std::numeric_limits<double>::quiet_NaN());
  double sum = 0, worst = 1;
  std::int64_t present = 0;
  for (std::size_t g = 0; g < k; ++g) {
    if (out.group_count[g] == 0) continue;
    out.group_acc[g] = static_cast<double>(right[g]) / static_cast<double>(out.group_count[g]);
    sum += out.group_acc[g];
    worst = std::min(worst, out.group_acc[g]);
    ++present;
  }
  out.macro_acc = sum / static_cast<double>(present);
  out.worst_group_acc = worst;
  return out;
}

/// From logits [N, classes] (the prediction is the argmax), labels [N] and groups [N] (undefined:
/// group = label).
template <Floating T>
GroupAccuracy group_accuracy(const Tensor<T>& logits, const IndexTensor& labels, const IndexTensor& groups = {},
                             std::int64_t num_groups = 0) {
  check(logits.dim() == 2 && labels.dim() == 1 && logits.size(0) == labels.size(0), "group_accuracy",
        "needs logits [N, classes] and labels [N], got ", logits.shape(), " and ", labels.shape());
  if (groups.defined())
    check(groups.shape() == labels.shape(), "group_accuracy", "groups of shape ", groups.shape(),
          " do not match labels of shape ", labels.shape());
  IndexTensor pred;
  {
    NoGradGuard no_grad;
    pred = argmax(logits.detach(), 1);
  }
  return group_accuracy(pred.values(), labels.values(),
                        groups.defined() ? groups.values() : std::span<const std::int64_t>{}, num_groups);
}

/// What evaluate() measures: the group accuracies and the mean cross-entropy.
struct Evaluation {
  GroupAccuracy accuracy;
  double loss = 0;

  /// loss, acc, macro_acc, worst_group_acc, each with `prefix` ("valid_", "test_").
  Metrics metrics(std::string_view prefix = "", bool per_group = false) const {
    Metrics m;
    m.set("loss", loss);
    for (const auto& [n, v] : accuracy.metrics(per_group)) m.set(n, v);
    return m.prefixed(prefix);
  }
};

namespace detail {
template <Floating T, class M>
Tensor<T> forward_model(M& model, const Tensor<T>& x) {
  if constexpr (std::invocable<M&, const Tensor<T>&>) return model(x);
  else return (*model)(x);
}
}  // namespace detail

/// The model's accuracies and mean cross-entropy on `data` (groups: one id per example; undefined:
/// group = label), in batches of `batch_size` under no-grad. A module is switched to eval() for the
/// pass and back to training afterwards if it was training.
template <Floating T, class M>
Evaluation evaluate(M& model, const data::Dataset<T>& data, std::int64_t batch_size = 512,
                    const IndexTensor& groups = {}, std::int64_t num_groups = 0) {
  data.validate("evaluate");
  check(batch_size > 0, "evaluate", "batch_size must be > 0, got ", batch_size);
  check(data.size() > 0, "evaluate", "the data set is empty");
  bool was_training = false;
  if constexpr (requires { model.is_training(); model.eval(); model.train(true); }) {
    was_training = model.is_training();
    model.eval();
  }
  NoGradGuard no_grad;
  const std::int64_t n = data.size();
  std::vector<std::int64_t> pred(static_cast<std::size_t>(n));
  double loss_sum = 0;
  for (std::int64_t s = 0; s < n; s += batch_size) {
    const std::int64_t e = std::min(s + batch_size, n);
    const auto logits = detail::forward_model<T>(model, slice(data.inputs, 0, s, e, 1));
    const auto y = slice(data.labels, 0, s, e, 1);
    check(logits.dim() == 2 && logits.size(0) == e - s, "evaluate", "the model must return logits [", e - s,
          ", classes], got ", logits.shape());
    loss_sum += static_cast<double>(cross_entropy(logits, y, Reduction::Sum).item());
    const auto p = argmax(logits, 1);
    std::copy_n(p.data(), e - s, pred.begin() + s);
  }
  if constexpr (requires { model.train(true); })
    if (was_training) model.train(true);
  return {group_accuracy(pred, data.labels.values(),
                         groups.defined() ? groups.values() : std::span<const std::int64_t>{}, num_groups),
          loss_sum / static_cast<double>(n)};
}

/// Mean and spread of one metric over seeds. std is the sample standard deviation (divisor n − 1,
/// what numpy calls ddof=1 and PyTorch's torch.std computes by default), 0 for a single value.
struct Summary {
  double mean = 0;
  double std = 0;
  std::vector<double> values;
};

inline Summary summarize(std::vector<double> values) {
  check(!values.empty(), "summarize", "needs at least one value");
  Summary s;
  for (double v : values) s.mean += v;
  s.mean /= static_cast<double>(values.size());
  if (values.size() > 1) {
    double ss = 0;
    for (double v : values) ss += (v - s.mean) * (v - s.mean);
    s.std = std::sqrt(ss / static_cast<double>(values.size() - 1));
  }
  s.values = std::move(values);
  return s;
}

}  // namespace metagrad::learn
