// SPDX-License-Identifier: MIT
// learn/results: a results.json written and read back is the same document (extra fields too);
// documents that break the format (missing fields, two selected rows, a value per seed missing,
// a mean that does not match, an accuracy above 1) are rejected naming the problem; select_best
// picks the best mean per method.
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "metagrad/learn/results.hpp"
#include "test_util.hpp"

using namespace metagrad;

namespace results_test {

namespace fs = std::filesystem;
using learn::Json;

learn::ResultsDoc sample() {
  learn::ResultsDoc doc;
  doc.example = "decoy_mnist";
  doc.mode = "quick";
  doc.paper = "Use Perturbations when Learning from Explanations (NeurIPS 2023)";
  doc.data = Json{{"name", "mnist"}, {"n_train", 8000}, {"n_val", 1000}, {"n_test", 1000}};
  doc.seeds = {0, 1, 2};
  doc.selection = "best valid worst_group_acc per method";
  learn::ResultRow erm{.method = "erm"};
  erm.selected = true;
  erm.set_metric("test_acc", learn::summarize({0.5, 0.6, 0.7}));
  erm.set_metric("valid_worst_group_acc", learn::summarize({0.1, 0.2, 0.3}));
  learn::ResultRow a{.method = "ibp_ex", .setting = Json{{"eps_max", 2.0}, {"alpha0", 1.0}}};
  a.set_metric("test_acc", learn::summarize({0.9, 0.91, 0.92}));
  a.set_metric("valid_worst_group_acc", learn::summarize({0.8, 0.8, 0.8}));
  a.extra = Json{{"note", "kept"}};
  learn::ResultRow b{.method = "ibp_ex", .setting = Json{{"eps_max", 1.0}, {"alpha0", 0.95}}};
  b.set_metric("test_acc", learn::summarize({0.95, 0.95, 0.95}));
  b.set_metric("valid_worst_group_acc", learn::summarize({0.7, 0.75, 0.8}));
  doc.rows = {erm, a, b};
  doc.rows[1].selected = true;
  doc.paper_figures = Json{{"ibp_ex.test_acc", nullptr}};
  doc.figures = {"saliency.png", "accuracy.png"};
  doc.elapsed_s = 12.5;
  doc.machine = "2 vCPU test machine";
  doc.extra = Json{{"config", {{"epochs", 3}}}};
  return doc;
}

fs::path temp_file(const std::string& stem) {
  return fs::temp_directory_path() / ("metagrad-results-" + stem + "-" + std::to_string(::getpid()) + ".json");
}

TEST_CASE("learn.results: a written document reads back the same, extra fields included") {
  const auto doc = sample();
  const auto path = temp_file("roundtrip");
  learn::write_results(path, doc);
  const auto back = learn::read_results(path);
  CHECK(learn::to_json(back) == learn::to_json(doc));
  CHECK(back.rows[1].extra.at("note") == "kept");
  CHECK(back.extra.at("config").at("epochs") == 3);
  CHECK(back.seeds == doc.seeds);
  // The keys come in the order RESULTS.md lists them.
  const auto j = learn::to_json(doc);
  CHECK(j.begin().key() == "example");
  CHECK(j["rows"][0].begin().key() == "method");
  fs::remove(path);
}

TEST_CASE("learn.results: documents that break the format are rejected, naming the problem") {
  const Json good = learn::to_json(sample());
  auto rejected = [&](auto&& edit, const char* fragment) {
    Json j = good;
    edit(j);
    METAGRAD_CHECK_ERROR(learn::results_from_json(j), "results", fragment);
  };
  CHECK_NOTHROW(learn::results_from_json(good));
  rejected([](Json& j) { j.erase("machine"); }, "'machine' is missing");
  rejected([](Json& j) { j["seeds"] = "0-4"; }, "'seeds' must be an array");
  rejected([](Json& j) { j["mode"] = "fast"; }, "'mode' is 'fast'");
  rejected([](Json& j) { j["rows"] = Json::array(); }, "'rows' is empty");
  rejected([](Json& j) { j["rows"][0].erase("selected"); }, "rows[0]: required field 'selected'");
  rejected([](Json& j) { j["rows"][2]["selected"] = true; }, "method 'ibp_ex' has 2 selected rows");
  rejected([](Json& j) { j["rows"][0]["selected"] = false; }, "method 'erm' has 0 selected rows");
  rejected([](Json& j) { j["rows"][0]["method"] = "IBP-Ex"; }, "not lower snake case");
  rejected([](Json& j) { j["rows"][0]["metrics"]["test_acc"]["values"].erase(0); }, "2 values for 3 seeds");
  rejected([](Json& j) { j["rows"][0]["metrics"]["test_acc"]["mean"] = 0.9; }, "has mean 0.9");
  rejected([](Json& j) { j["rows"][0]["metrics"]["test_acc"]["std"] = 0.0816; }, "sample std");
  rejected([](Json& j) { j["rows"][0]["metrics"]["test_acc"] = {{"mean", 1.5}, {"std", 0}, {"values", {1.5, 1.5, 1.5}}}; },
           "outside [0, 1]");
  rejected([](Json& j) { j["rows"][0]["metrics"]["test_acc"].erase("std"); }, "'std' is missing");
  rejected([](Json& j) { j["rows"][0]["seeds"] = Json::array(); }, "'seeds' must be a non-empty array");
  rejected([](Json& j) { j["rows"][0]["seeds"] = {0, 1}; }, "3 values for 2 seeds");
}

TEST_CASE("learn.results: a row on seeds of its own holds one value per one of them") {
  Json j = learn::to_json(sample());
  j["rows"][0]["seeds"] = {0, 1};
  j["rows"][0]["metrics"]["test_acc"] = learn::detail::summary_json(learn::summarize({0.5, 0.6}));
  j["rows"][0]["metrics"]["valid_worst_group_acc"] = learn::detail::summary_json(learn::summarize({0.1, 0.2}));
  const auto doc = learn::results_from_json(j);
  CHECK(doc.rows[0].extra.at("seeds").size() == 2);
  CHECK(learn::to_json(doc) == j);
}

TEST_CASE("learn.results: the writer refuses a bad document and leaves the old file") {
  const auto path = temp_file("refuse");
  learn::write_results(path, sample());
  auto bad = sample();
  bad.rows[2].selected = true;
  METAGRAD_CHECK_ERROR(learn::write_results(path, bad), "results", "selected rows");
  CHECK_NOTHROW(learn::read_results(path));
  {
    std::ofstream(path) << "{ not json";
  }
  METAGRAD_CHECK_ERROR(learn::read_results(path), "read_results", "not valid JSON");
  fs::remove(path);
  METAGRAD_CHECK_ERROR(learn::read_results(path), "read_results", "cannot open");
}

TEST_CASE("learn.results: select_best marks the best mean of a metric per method") {
  auto rows = sample().rows;
  learn::select_best(rows, "valid_worst_group_acc");
  CHECK(rows[0].selected);       // erm has one row
  CHECK(rows[1].selected);       // 0.8 beats 0.75
  CHECK_FALSE(rows[2].selected);
  learn::select_best(rows, "test_acc");  // not how an example selects; it shows the metric matters
  CHECK_FALSE(rows[1].selected);
  CHECK(rows[2].selected);
  METAGRAD_CHECK_ERROR(learn::select_best(rows, "valid_bogus"), "select_best", "valid_bogus");
}

}  // namespace results_test
