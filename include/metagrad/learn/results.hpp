// SPDX-License-Identifier: MIT
// The results.json every reproduction writes (its format is ../shared/RESULTS.md, mirrored in
// docs/): a document of rows (method, setting, selected, metrics {mean, std, values} over the
// seeds) plus the data, seeds, selection rule, the paper's figures and the machine. The writer is
// atomic (a reader never sees half a file); the reader checks every required field, so the suite
// and the report page can trust what they read. Extra fields are kept in `extra` both ways.
#pragma once
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <map>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "metagrad/core/error.hpp"
#include "metagrad/io/detail/atomic_file.hpp"
#include "metagrad/learn/metrics.hpp"

namespace metagrad::learn {

using Json = nlohmann::ordered_json;

/// One row: a method at one setting of its hyperparameters, with metrics over the seeds.
struct ResultRow {
  std::string method;                                   // lower snake case: erm, rrr, ibp_ex, ...
  Json setting = Json::object();                        // the hyperparameters of this row
  bool selected = false;                                // the row the table reports for this method
  std::vector<std::pair<std::string, Summary>> metrics{};  // in the order they are written
  Json extra = Json::object();                          // any further fields of the row

  void set_metric(const std::string& name, Summary s) {
    for (auto& [n, v] : metrics)
      if (n == name) {
        v = std::move(s);
        return;
      }
    metrics.emplace_back(name, std::move(s));
  }
  const Summary* find_metric(const std::string& name) const {
    for (const auto& [n, v] : metrics)
      if (n == name) return &v;
    return nullptr;
  }
};

struct ResultsDoc {
  std::string example;     // "decoy_mnist"
  std::string mode = "quick";  // "full" or "quick"
  std::string paper;
  Json data = Json::object();  // {"name", "source", "n_train", "n_val", "n_test", ...}
  std::vector<std::uint64_t> seeds;
  std::string selection;
  std::vector<ResultRow> rows;
  Json paper_figures = Json::object();
  std::vector<std::string> figures;
  double elapsed_s = 0;
  std::string machine;
  Json extra = Json::object();  // further top-level fields, written after the required ones
};

namespace detail {

inline bool is_snake_case(const std::string& s) {
  if (s.empty() || !std::islower(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

/// Metric names that hold accuracies (fractions in [0, 1]).
inline bool is_accuracy_name(const std::string& name) {
  return name.ends_with("_acc") || name == "acc" || name == "accuracy" || name.ends_with("_accuracy");
}

inline Json summary_json(const Summary& s) { return Json{{"mean", s.mean}, {"std", s.std}, {"values", s.values}}; }

}  // namespace detail

/// Throws "results: <where>: <what>" for the first problem, naming the field; returns normally when
/// `doc` is well formed: every required field present with its type, mode "full" or "quick", at
/// least one row, method names in lower snake case, exactly one selected row per method, every
/// metric's values one per seed (the document's, or the row's own "seeds" where it has them) with
/// mean (and std, the sample standard deviation) matching them, accuracies in [0, 1].
inline void validate_results(const ResultsDoc& doc) {
  constexpr const char* op = "results";
  check(!doc.example.empty(), op, "'example' is empty");
  check(doc.mode == "full" || doc.mode == "quick", op, "'mode' is '", doc.mode, "', not 'full' or 'quick'");
  check(doc.data.is_object() && doc.data.contains("name"), op, "'data' must be an object with a 'name'");
  check(!doc.seeds.empty(), op, "'seeds' is empty");
  check(!doc.selection.empty(), op, "'selection' is empty: say how the reported rows were chosen");
  check(!doc.rows.empty(), op, "'rows' is empty");
  check(doc.paper_figures.is_object(), op, "'paper_figures' must be an object");
  check(std::isfinite(doc.elapsed_s) && doc.elapsed_s >= 0, op, "'elapsed_s' = ", doc.elapsed_s,
        " must be finite and >= 0");
  std::map<std::string, int> selected;
  for (std::size_t r = 0; r < doc.rows.size(); ++r) {
    const auto& row = doc.rows[r];
    const std::string where = "rows[" + std::to_string(r) + "] (" + row.method + ")";
    check(detail::is_snake_case(row.method), op, where, ": method '", row.method, "' is not lower snake case");
    check(row.setting.is_object(), op, where, ": 'setting' must be an object");
    selected[row.method] += row.selected ? 1 : 0;
    check(!row.metrics.empty(), op, where, ": no metrics");
    // A row may run on seeds of its own (a costlier part of an example on fewer seeds), as the
    // report reads it.
    std::size_t seeds = doc.seeds.size();
    if (row.extra.is_object() && row.extra.contains("seeds")) {
      const Json& own = row.extra["seeds"];
      check(own.is_array() && !own.empty() &&
                std::all_of(own.begin(), own.end(), [](const Json& v) { return v.is_number_integer(); }),
            op, where, ": 'seeds' must be a non-empty array of integers");
      seeds = own.size();
    }
    for (const auto& [name, s] : row.metrics) {
      check(s.values.size() == seeds, op, where, ": metric '", name, "' has ", s.values.size(), " values for ", seeds,
            " seeds");
      double mean = 0;
      for (double v : s.values) {
        check(std::isfinite(v), op, where, ": metric '", name, "' has a non-finite value");
        if (detail::is_accuracy_name(name))
          check(v >= 0 && v <= 1, op, where, ": accuracy '", name, "' = ", v, " is outside [0, 1]");
        mean += v;
      }
      mean /= static_cast<double>(s.values.size());
      const auto near = [](double a, double b) { return std::abs(a - b) <= 1e-9 + 1e-6 * std::abs(b); };
      check(near(s.mean, mean), op, where, ": metric '", name, "' has mean ", s.mean, " but its values average ",
            mean);
      const double want_std = summarize(s.values).std;
      check(near(s.std, want_std), op, where, ": metric '", name, "' has std ", s.std,
            " but the sample std of its values is ", want_std);
    }
  }
  for (const auto& [method, count] : selected)
    check(count == 1, op, "method '", method, "' has ", count, " selected rows; exactly one must be selected");
}

/// The document as JSON, in the order RESULTS.md lists the fields, `extra` fields last.
inline Json to_json(const ResultsDoc& doc) {
  Json rows = Json::array();
  for (const auto& row : doc.rows) {
    Json metrics = Json::object();
    for (const auto& [name, s] : row.metrics) metrics[name] = detail::summary_json(s);
    Json j{{"method", row.method}, {"setting", row.setting}, {"selected", row.selected}, {"metrics", metrics}};
    for (const auto& [k, v] : row.extra.items()) j[k] = v;
    rows.push_back(std::move(j));
  }
  Json j{{"example", doc.example},     {"mode", doc.mode},
         {"paper", doc.paper},         {"data", doc.data},
         {"seeds", doc.seeds},         {"selection", doc.selection},
         {"rows", rows},               {"paper_figures", doc.paper_figures},
         {"figures", doc.figures},     {"elapsed_s", doc.elapsed_s},
         {"machine", doc.machine}};
  for (const auto& [k, v] : doc.extra.items()) j[k] = v;
  return j;
}

namespace detail {

template <class Fn>
auto field(const Json& j, const char* key, const std::string& where, const char* type, Fn&& is_type) -> const Json& {
  check(j.is_object() && j.contains(key), "results", where, ": required field '", key, "' is missing");
  const Json& v = j.at(key);
  check(is_type(v), "results", where, ": field '", key, "' must be ", type, ", got ", v.type_name());
  return v;
}
inline const Json& string_field(const Json& j, const char* key, const std::string& where) {
  return field(j, key, where, "a string", [](const Json& v) { return v.is_string(); });
}
inline const Json& number_field(const Json& j, const char* key, const std::string& where) {
  return field(j, key, where, "a number", [](const Json& v) { return v.is_number(); });
}
inline const Json& array_field(const Json& j, const char* key, const std::string& where) {
  return field(j, key, where, "an array", [](const Json& v) { return v.is_array(); });
}
inline const Json& object_field(const Json& j, const char* key, const std::string& where) {
  return field(j, key, where, "an object", [](const Json& v) { return v.is_object(); });
}

}  // namespace detail

/// Reads a results document from JSON and validates it (validate_results); fields beyond the
/// required ones are kept in `extra`.
inline ResultsDoc results_from_json(const Json& j) {
  using namespace detail;
  check(j.is_object(), "results", "the document must be a JSON object, got ", j.type_name());
  ResultsDoc doc;
  const std::string top = "document";
  doc.example = string_field(j, "example", top).get<std::string>();
  doc.mode = string_field(j, "mode", top).get<std::string>();
  doc.paper = string_field(j, "paper", top).get<std::string>();
  doc.data = object_field(j, "data", top);
  for (const auto& s : array_field(j, "seeds", top)) {
    check(s.is_number_integer() && s.get<std::int64_t>() >= 0, "results", "document: 'seeds' must hold ",
          "non-negative integers, got ", s.dump());
    doc.seeds.push_back(s.get<std::uint64_t>());
  }
  doc.selection = string_field(j, "selection", top).get<std::string>();
  const auto& rows = array_field(j, "rows", top);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const Json& rj = rows[r];
    const std::string where = "rows[" + std::to_string(r) + "]";
    check(rj.is_object(), "results", where, " must be an object");
    ResultRow row;
    row.method = string_field(rj, "method", where).get<std::string>();
    row.setting = object_field(rj, "setting", where);
    row.selected = field(rj, "selected", where, "a boolean", [](const Json& v) { return v.is_boolean(); }).get<bool>();
    for (const auto& [name, mj] : object_field(rj, "metrics", where).items()) {
      const std::string mwhere = where + ".metrics." + name;
      Summary s;
      s.mean = number_field(mj, "mean", mwhere).get<double>();
      s.std = number_field(mj, "std", mwhere).get<double>();
      for (const auto& v : array_field(mj, "values", mwhere)) {
        check(v.is_number(), "results", mwhere, ": 'values' must hold numbers, got ", v.dump());
        s.values.push_back(v.get<double>());
      }
      row.metrics.emplace_back(name, std::move(s));
    }
    for (const auto& [k, v] : rj.items())
      if (k != "method" && k != "setting" && k != "selected" && k != "metrics") row.extra[k] = v;
    doc.rows.push_back(std::move(row));
  }
  doc.paper_figures = object_field(j, "paper_figures", top);
  for (const auto& f : array_field(j, "figures", top)) {
    check(f.is_string(), "results", "document: 'figures' must hold file names, got ", f.dump());
    doc.figures.push_back(f.get<std::string>());
  }
  doc.elapsed_s = number_field(j, "elapsed_s", top).get<double>();
  doc.machine = string_field(j, "machine", top).get<std::string>();
  static constexpr const char* known[] = {"example", "seeds", "mode",  "paper",   "data",    "selection",
                                          "rows",    "paper_figures", "figures", "elapsed_s", "machine"};
  for (const auto& [k, v] : j.items())
    if (std::none_of(std::begin(known), std::end(known), [&](const char* n) { return k == n; })) doc.extra[k] = v;
  validate_results(doc);
  return doc;
}

/// Validates `doc` and writes it to `path` (indented, final newline) atomically, creating the folder.
inline void write_results(const std::filesystem::path& path, const ResultsDoc& doc) {
  validate_results(doc);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const std::string text = to_json(doc).dump(2) + '\n';
  io::detail::write_file_atomically(path, "write_results", [&](auto&& write) { write(std::as_bytes(std::span(text))); });
}

/// Reads and validates the results.json at `path`.
inline ResultsDoc read_results(const std::filesystem::path& path) {
  std::ifstream in(path);
  check(in.good(), "read_results", "cannot open '", path.string(), "'");
  std::stringstream text;
  text << in.rdbuf();
  Json j;
  try {
    j = Json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    fail("read_results", "'", path.string(), "' is not valid JSON: ", e.what());
  }
  try {
    return results_from_json(j);
  } catch (const Error& e) {
    fail("read_results", "'", path.string(), "': ", e.what());
  }
}

/// Marks, for every method, the row with the highest mean of `metric` as selected (the first of
/// equal ones) and clears the others; rows without the metric are never selected, and a method
/// none of whose rows has it is an error. This is how a sweep is reduced to one reported setting,
/// e.g. on "valid_worst_group_acc" so that the choice never looks at test data.
inline void select_best(std::vector<ResultRow>& rows, const std::string& metric) {
  std::map<std::string, std::size_t> best;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    rows[r].selected = false;
    const Summary* s = rows[r].find_metric(metric);
    if (!s) continue;
    auto it = best.find(rows[r].method);
    if (it == best.end()) best.emplace(rows[r].method, r);
    else if (s->mean > rows[it->second].find_metric(metric)->mean) it->second = r;
  }
  for (const auto& row : rows)
    check(best.contains(row.method), "select_best", "no row of method '", row.method, "' has the metric '", metric,
          "'");
  for (const auto& [method, r] : best) rows[r].selected = true;
}

/// "2 × AMD EPYC 9R14 (2 threads), GCC 12.2, Release": the CPU model from /proc/cpuinfo, the
/// hardware threads, the compiler and `build` (the caller's build type), for the 'machine' field.
inline std::string describe_machine(const std::string& build = "Release") {
  std::string cpu = "unknown CPU";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);)
    if (line.starts_with("model name")) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) cpu = line.substr(colon + 2);
      break;
    }
  std::string compiler;
#if defined(__clang__)
  compiler = "Clang " + std::to_string(__clang_major__) + "." + std::to_string(__clang_minor__);
#elif defined(__GNUC__)
  compiler = "GCC " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__);
#else
  compiler = "unknown compiler";
#endif
  return std::to_string(std::thread::hardware_concurrency()) + " vCPU " + cpu + ", " + compiler + ", " + build;
}

}  // namespace metagrad::learn
