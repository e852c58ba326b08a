// SPDX-License-Identifier: MIT
// The op table: each row names an op, the shapes of its inputs (odd, broadcasting where the op
// broadcasts), the domain its random inputs are drawn from, and the highest derivative order to
// gradcheck. check_op_table() runs double-precision central differences for every order up to
// max_order. An order below 2 needs a written reason.
#pragma once
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "metagrad/core/creation.hpp"
#include "metagrad/functional/gradcheck.hpp"

namespace metagrad::testing {

struct OpRow {
  std::string name;
  std::vector<Shape> shapes;  // one per input, drawn uniform in [low, high)
  std::function<Tensor<double>(const std::vector<Tensor<double>>&)> fn;
  int max_order = 2;
  double low = -2.0, high = 2.0;
  std::string reason = {};  // required when max_order < 2
  /// Overrides the random inputs (e.g. keep values away from a kink, or fixed positive values).
  std::function<std::vector<Tensor<double>>(Generator&)> make_inputs = {};
  GradcheckOptions options = {};
};

inline void check_op_row(const OpRow& row, std::uint64_t seed = 7) {
  INFO("op: ", row.name);
  CHECK_MESSAGE((row.max_order >= 2 || !row.reason.empty()), ("max_order < 2 needs a reason: " + row.name));
  Generator gen(seed);
  std::vector<Tensor<double>> inputs;
  if (row.make_inputs) {
    inputs = row.make_inputs(gen);
  } else {
    for (const auto& s : row.shapes) inputs.push_back(rand<double>(s, gen, row.low, row.high));
  }
  GradcheckOptions options = row.options;
  options.order = row.max_order;
  const auto start = std::chrono::steady_clock::now();
  const auto result = gradcheck(row.fn, inputs, options);
  CHECK_MESSAGE(result.ok, (row.name + " failed gradcheck:\n" + result.report));
  // METAGRAD_OP_TIMES=1 prints each row's time: the op tables dominate the test time in CI.
  if (std::getenv("METAGRAD_OP_TIMES"))
    std::printf("%8.3f s  order %d  %s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                row.max_order, row.name.c_str());
}

inline void check_op_table(std::span<const OpRow> rows) {
  for (const auto& row : rows) check_op_row(row);
}

}  // namespace metagrad::testing
