// SPDX-License-Identifier: MIT
// The suite's report: reads OUT/<name>/results.json of every example run, checks each against the
// results format (the fields every reproduction writes; a wrong one is named with its path), prints
// one summary table (example × method × headline metric, mean ± std over the seeds, the paper's
// figure beside ours) and writes OUT/report.html: per example its table of rows, the paper's
// numbers beside ours, its figures, the machine and the time. All text on the page is escaped.
//   make_report [--out DIR] [--note TEXT]... [--elapsed SECONDS] [NAME...]
// Without NAMEs, every DIR/*/results.json is read. Exits 1 when a results.json is missing or
// malformed (the page is still written, with the error in place of that example).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "common.hpp"
#include "metagrad/io/html.hpp"

using namespace metagrad;
using namespace metagrad::examples;
namespace fs = std::filesystem;

namespace {

/// A results.json that does not follow the format: the message names the file and the field.
struct Invalid : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The values of an example's curve keys ("curve_keys": sweep variables such as n) in a row's
/// setting, as text, so the summary says which point of a curve the selected row is.
std::string curve_point(const Json& doc, const Json& setting) {
  std::string out;
  if (!doc.contains("curve_keys") || !setting.is_object()) return out;
  for (const auto& key : doc["curve_keys"])
    if (key.is_string() && setting.contains(key.get<std::string>()))
      out += " " + key.get<std::string>() + "=" + setting[key.get<std::string>()].dump();
  return out;
}

/// Checks one results.json; `where` is its path, for the messages.
class Validator {
 public:
  explicit Validator(std::string where) : where_(std::move(where)) {}

  void run(const Json& doc) {
    require(doc.is_object(), "", "the file must hold one JSON object");
    text(doc, "example");
    const std::string mode = text(doc, "mode");
    require(mode == "quick" || mode == "full", "mode", "must be \"quick\" or \"full\", got \"" + mode + "\"");
    text(doc, "paper");
    const Json& data = field(doc, "data");
    require(data.is_object(), "data", "must be an object {name, source, n_train, n_val, n_test}");
    text(data, "name", "data.");
    text(data, "source", "data.");
    for (const char* n : {"n_train", "n_val", "n_test"}) {
      const Json& v = field(data, n, "data.");
      require(v.is_number_integer() && v.get<long long>() >= 0, std::string("data.") + n, "must be a count >= 0");
    }
    const Json& seeds = field(doc, "seeds");
    require(seeds.is_array() && !seeds.empty(), "seeds", "must be a non-empty array of seeds");
    for (const auto& s : seeds) require(s.is_number_integer(), "seeds", "must hold integers");
    text(doc, "selection");
    const Json& rows = field(doc, "rows");
    require(rows.is_array() && !rows.empty(), "rows", "must be a non-empty array");
    std::map<std::string, int> selected;
    const std::regex snake("[a-z][a-z0-9_]*");
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Json& row = rows[i];
      const std::string at = "rows[" + std::to_string(i) + "]";
      require(row.is_object(), at, "must be an object {method, setting, selected, metrics}");
      const std::string method = text(row, "method", at + ".");
      require(std::regex_match(method, snake), at + ".method", "must be lower snake case, got \"" + method + "\"");
      require(field(row, "setting", at + ".").is_object(), at + ".setting", "must be an object");
      require(field(row, "selected", at + ".").is_boolean(), at + ".selected", "must be true or false");
      selected[method] += row["selected"].get<bool>();
      const Json& metrics = field(row, "metrics", at + ".");
      require(metrics.is_object() && !metrics.empty(), at + ".metrics", "must be a non-empty object");
      // A row may run on seeds of its own (a costlier part of an example on fewer seeds).
      std::size_t row_seeds = seeds.size();
      if (row.contains("seeds")) {
        require(row["seeds"].is_array() && !row["seeds"].empty(), at + ".seeds", "must be a non-empty array of seeds");
        row_seeds = row["seeds"].size();
      }
      for (const auto& [name, m] : metrics.items()) metric(name, m, at + ".metrics." + name, row_seeds);
    }
    for (const auto& [method, n] : selected)
      require(n == 1, "rows", "method \"" + method + "\" has " + std::to_string(n) +
                                  " rows with \"selected\": true (exactly one is the reported setting)");
    if (doc.contains("paper_figures")) {
      require(doc["paper_figures"].is_object(), "paper_figures", "must be an object of \"method.metric\": number");
      for (const auto& [k, v] : doc["paper_figures"].items())
        require(v.is_number(), "paper_figures." + k, "must be a number");
    }
    const Json& figures = field(doc, "figures");
    require(figures.is_array(), "figures", "must be an array of PNG file names (relative to the example's folder)");
    for (const auto& f : figures) {
      require(f.is_string() && !f.get<std::string>().empty(), "figures", "must hold file names");
      const fs::path p(f.get<std::string>());
      require(p.is_relative() && p.string().find("..") == std::string::npos, "figures",
              "\"" + p.string() + "\" must be a path inside the example's folder");
    }
    const Json& elapsed = field(doc, "elapsed_s");
    require(elapsed.is_number() && elapsed.get<double>() >= 0, "elapsed_s", "must be seconds >= 0");
    text(doc, "machine");
    if (doc.contains("headline")) {
      require(doc["headline"].is_array(), "headline", "must be an array of metric names");
      for (const auto& h : doc["headline"]) require(h.is_string(), "headline", "must hold metric names");
    }
  }

 private:
  std::string where_;

  void require(bool ok, const std::string& at, const std::string& what) const {
    if (!ok) throw Invalid(where_ + (at.empty() ? "" : ": " + at) + ": " + what);
  }
  const Json& field(const Json& obj, const std::string& key, const std::string& prefix = "") const {
    require(obj.contains(key), prefix + key, "is missing (a required field of results.json)");
    return obj[key];
  }
  std::string text(const Json& obj, const std::string& key, const std::string& prefix = "") const {
    const Json& v = field(obj, key, prefix);
    require(v.is_string() && !v.get<std::string>().empty(), prefix + key, "must be a non-empty string");
    return v.get<std::string>();
  }
  void metric(const std::string& name, const Json& m, const std::string& at, std::size_t seeds) const {
    require(m.is_object() && m.contains("mean") && m.contains("std") && m.contains("values"), at,
            "must be {\"mean\", \"std\", \"values\"}");
    require(m["mean"].is_number() && m["std"].is_number() && m["std"].get<double>() >= 0, at,
            "mean and std must be numbers, std >= 0");
    require(m["values"].is_array() && m["values"].size() == seeds, at,
            "values must hold one number per seed (" + std::to_string(seeds) + ")");
    double sum = 0;
    for (const auto& v : m["values"]) {
      require(v.is_number() && std::isfinite(v.get<double>()), at, "values must be finite numbers");
      sum += v.get<double>();
    }
    const double mean = m["mean"].get<double>(), avg = sum / static_cast<double>(seeds);
    require(std::abs(mean - avg) <= 1e-6 * std::max(1.0, std::abs(avg)), at,
            formatted("mean %g is not the mean of its values (%g)", mean, avg));
    const bool accuracy = name.ends_with("_acc") || name.starts_with("acc_");
    for (const auto& v : m["values"])
      require(!accuracy || (v.get<double>() >= 0 && v.get<double>() <= 1), at,
              "an accuracy is a fraction in [0, 1], got " + v.dump());
  }
};

/// One example's folder and what was read from it.
struct Entry {
  std::string name;  // folder under DIR
  Json doc;
  std::string error;  // non-empty: results.json could not be used
};

std::string number(double v) {
  if (v != 0 && (std::abs(v) >= 1000 || std::abs(v) < 0.001)) return formatted("%.3g", v);
  return formatted("%.3f", v);
}
std::string mean_std(const Json& m) {
  return number(m["mean"].get<double>()) + " ± " + number(m["std"].get<double>());
}
std::string setting_text(const Json& setting) {
  std::string out;
  for (const auto& [k, v] : setting.items()) out += (out.empty() ? "" : ", ") + k + " = " + (v.is_string() ? v.get<std::string>() : v.dump());
  return out.empty() ? "—" : out;
}

/// The metrics a summary shows for an example: its "headline" list, else the first two of the
/// usual names that a selected row has, else the first metric of the first row.
std::vector<std::string> headline(const Json& doc) {
  std::vector<std::string> out;
  if (doc.contains("headline"))
    for (const auto& h : doc["headline"]) out.push_back(h.get<std::string>());
  if (!out.empty()) return out;
  static const char* usual[] = {"test_worst_group_acc", "test_macro_acc", "test_acc", "test_error", "test_mse",
                                "constraint_satisfaction", "simulability", "plausibility_auc", "fidelity",
                                "acc_f", "acc_g"};
  for (const char* u : usual) {
    for (const auto& row : doc["rows"])
      if (row["selected"].get<bool>() && row["metrics"].contains(u)) {
        out.push_back(u);
        break;
      }
    if (out.size() == 2) break;
  }
  if (out.empty()) out.push_back(doc["rows"][0]["metrics"].begin().key());
  return out;
}

/// The paper's figure for method.metric, if results.json has one.
std::optional<double> paper_figure(const Json& doc, const std::string& method, const std::string& metric) {
  if (!doc.contains("paper_figures")) return std::nullopt;
  const auto it = doc["paper_figures"].find(method + "." + metric);
  if (it == doc["paper_figures"].end()) return std::nullopt;
  return it->get<double>();
}

struct SummaryLine {
  std::string example, method, metric, ours, paper;
};

std::vector<SummaryLine> summary(const std::vector<Entry>& entries) {
  std::vector<SummaryLine> lines;
  for (const auto& e : entries) {
    if (!e.error.empty()) {
      lines.push_back({e.name, "(error)", "", "see the report", ""});
      continue;
    }
    const auto metrics = headline(e.doc);
    for (const auto& row : e.doc["rows"]) {
      if (!row["selected"].get<bool>()) continue;
      const std::string method = row["method"].get<std::string>();
      // A curve's point says where on the curve it is: "penalty (task="regression" n=10)".
      const std::string point = curve_point(e.doc, row["setting"]);
      const std::string label = point.empty() ? method : method + " (" + point.substr(1) + ")";
      for (const auto& m : metrics) {
        if (!row["metrics"].contains(m)) continue;
        const auto p = paper_figure(e.doc, method, m);
        lines.push_back({e.name, label, m, mean_std(row["metrics"][m]), p ? number(*p) : ""});
      }
    }
  }
  return lines;
}

void print_summary(const std::vector<SummaryLine>& lines) {
  // Widths in columns; "±" is two bytes but one column, so it pads one byte more.
  auto columns = [](const std::string& s) { return s.size() - (s.find("±") != std::string::npos ? 1 : 0); };
  const std::string ours_head = "ours (mean ± std)";
  std::size_t w[4] = {7, 6, 6, columns(ours_head)};
  for (const auto& l : lines) {
    w[0] = std::max(w[0], l.example.size());
    w[1] = std::max(w[1], l.method.size());
    w[2] = std::max(w[2], l.metric.size());
    w[3] = std::max(w[3], columns(l.ours));
  }
  std::printf("%-*s  %-*s  %-*s  %-*s  %s\n", static_cast<int>(w[0]), "example", static_cast<int>(w[1]), "method",
              static_cast<int>(w[2]), "metric", static_cast<int>(w[3] + 1), ours_head.c_str(), "paper");
  std::string last;
  for (const auto& l : lines) {
    const int pad = static_cast<int>(w[3] + l.ours.size() - columns(l.ours));
    std::printf("%-*s  %-*s  %-*s  %-*s  %s\n", static_cast<int>(w[0]), l.example == last ? "" : l.example.c_str(),
                static_cast<int>(w[1]), l.method.c_str(), static_cast<int>(w[2]), l.metric.c_str(), pad,
                l.ours.c_str(), l.paper.empty() ? "—" : l.paper.c_str());
    last = l.example;
  }
}

std::string h(std::string_view s) { return io::html_escape(s); }

constexpr const char* kStyle = R"(
body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f2f2f2}tr.selected td{font-weight:bold}td.num,td.setting{font-family:monospace;white-space:nowrap}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}
figure{display:inline-block;margin:.5em;vertical-align:top}figure img{max-width:100%;border:1px solid #ddd}
.error{color:#b00;font-weight:bold}.paper{color:#555}section{border-top:2px solid #444;margin-top:2em})";

// After load, <body> says how many images decoded (naturalWidth > 0) and how many tables there
// are, so a headless browser's --dump-dom shows whether the page really rendered.
constexpr const char* kScript = R"(
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-loaded-images', ok + '/' + imgs.length);
  document.body.setAttribute('data-tables', String(document.querySelectorAll('table').length));
});)";

std::string example_html(const Entry& e) {
  std::string out = "<section class=\"example\" id=\"" + h(e.name) + "\">\n<h2>" + h(e.name) + "</h2>\n";
  if (!e.error.empty()) return out + "<p class=\"error\">" + h(e.error) + "</p>\n</section>\n";
  const Json& d = e.doc;
  const Json& data = d["data"];
  std::string seeds;
  for (const auto& s : d["seeds"]) seeds += (seeds.empty() ? "" : ", ") + s.dump();
  out += "<dl><dt>example</dt><dd>" + h(d["example"].get<std::string>()) + "</dd><dt>paper</dt><dd>" +
         h(d["paper"].get<std::string>()) + "</dd><dt>mode</dt><dd>" + h(d["mode"].get<std::string>()) +
         "</dd><dt>data</dt><dd>" + h(data["name"].get<std::string>()) + " (" + h(data["source"].get<std::string>()) +
         "): " + data["n_train"].dump() + " train / " + data["n_val"].dump() + " validation / " +
         data["n_test"].dump() + " test</dd><dt>seeds</dt><dd>" + h(seeds) + "</dd><dt>selection</dt><dd>" +
         h(d["selection"].get<std::string>()) + "</dd><dt>time</dt><dd>" +
         formatted("%.1f s", d["elapsed_s"].get<double>()) + "</dd><dt>machine</dt><dd>" +
         h(d["machine"].get<std::string>()) + "</dd></dl>\n";

  // Every metric any row has, in the order they first appear.
  std::vector<std::string> metrics;
  for (const auto& row : d["rows"])
    for (const auto& [k, v] : row["metrics"].items())
      if (std::find(metrics.begin(), metrics.end(), k) == metrics.end()) metrics.push_back(k);
  out += "<table class=\"results\"><thead><tr><th>method</th><th>setting</th><th>selected</th>";
  for (const auto& m : metrics) out += "<th>" + h(m) + "</th>";
  out += "</tr></thead><tbody>\n";
  for (const auto& row : d["rows"]) {
    const bool sel = row["selected"].get<bool>();
    const std::string method = row["method"].get<std::string>();
    out += std::string(sel ? "<tr class=\"selected\">" : "<tr>") + "<td>" + h(method) + "</td><td class=\"setting\">" +
           h(setting_text(row["setting"])) + "</td><td>" + (sel ? "yes" : "") + "</td>";
    for (const auto& m : metrics) {
      out += "<td class=\"num\">";
      if (row["metrics"].contains(m)) out += h(mean_std(row["metrics"][m]));
      if (const auto p = paper_figure(d, method, m); sel && p) out += " <span class=\"paper\">(paper " + number(*p) + ")</span>";
      out += "</td>";
    }
    out += "</tr>\n";
  }
  out += "</tbody></table>\n";

  if (d.contains("paper_figures") && !d["paper_figures"].empty()) {
    out += "<table class=\"paper-figures\"><thead><tr><th>paper's figure</th><th>paper</th><th>ours (selected)</th>"
           "</tr></thead><tbody>\n";
    for (const auto& [key, value] : d["paper_figures"].items()) {
      std::string ours = "—";
      const auto dot = key.find('.');
      if (dot != std::string::npos)
        for (const auto& row : d["rows"])
          if (row["selected"].get<bool>() && row["method"] == key.substr(0, dot) &&
              row["metrics"].contains(key.substr(dot + 1)))
            ours = mean_std(row["metrics"][key.substr(dot + 1)]);
      out += "<tr><td>" + h(key) + "</td><td class=\"num\">" + number(value.get<double>()) + "</td><td class=\"num\">" +
             h(ours) + "</td></tr>\n";
    }
    out += "</tbody></table>\n";
  }
  for (const auto& f : d["figures"]) {
    const std::string src = e.name + "/" + f.get<std::string>();
    out += "<figure><img src=\"" + h(src) + "\" alt=\"" + h(f.get<std::string>()) + "\"><figcaption>" +
           h(f.get<std::string>()) + "</figcaption></figure>\n";
  }
  return out + "</section>\n";
}

std::string page_html(const std::vector<Entry>& entries, const std::vector<SummaryLine>& lines,
                      const std::vector<std::string>& notes, double elapsed) {
  char when[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::string out = std::string("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">") +
                    "<title>metagrad reproduction suite</title>\n<style>" + kStyle + "</style>\n<script>" + kScript +
                    "</script></head>\n<body data-loaded-images=\"pending\">\n<h1>metagrad reproduction suite</h1>\n<p>" +
                    h(when) + " on " + h(machine_description());
  if (elapsed > 0) out += formatted("; the suite took %.0f s", elapsed);
  out += "</p>\n";
  if (!notes.empty()) {
    out += "<ul class=\"notes\">";
    for (const auto& n : notes) out += "<li>" + h(n) + "</li>";
    out += "</ul>\n";
  }
  out += "<h2>Summary</h2>\n<table class=\"summary\"><thead><tr><th>example</th><th>method</th><th>metric</th>"
         "<th>ours (mean ± std)</th><th>paper</th></tr></thead><tbody>\n";
  for (const auto& l : lines)
    out += "<tr><td><a href=\"#" + h(l.example) + "\">" + h(l.example) + "</a></td><td>" + h(l.method) + "</td><td>" +
           h(l.metric) + "</td><td class=\"num\">" + h(l.ours) + "</td><td class=\"num\">" +
           h(l.paper.empty() ? "—" : l.paper) + "</td></tr>\n";
  out += "</tbody></table>\n";
  for (const auto& e : entries) out += example_html(e);
  return out + "</body></html>\n";
}

}  // namespace

int main(int argc, char** argv) try {
  std::string out_dir = "out";
  std::vector<std::string> names, notes;
  double elapsed = 0;
  CLI::App app{"metagrad: the suite's summary table and OUT/report.html from every OUT/<name>/results.json"};
  app.add_option("--out", out_dir, "the suite's output folder (holds <name>/results.json)");
  app.add_option("--note", notes, "a line for the top of the page (e.g. an example that was skipped)");
  app.add_option("--elapsed", elapsed, "seconds the whole suite took");
  app.add_option("names", names, "example folders to report (default: every one with a results.json)");
  CLI11_PARSE(app, argc, argv);

  const fs::path dir(out_dir);
  if (names.empty() && fs::is_directory(dir))
    for (const auto& d : fs::directory_iterator(dir))
      if (fs::is_regular_file(d.path() / "results.json")) names.push_back(d.path().filename().string());
  std::sort(names.begin(), names.end());
  if (names.empty()) {
    std::fprintf(stderr, "make_report: no %s/<name>/results.json to report\n", dir.c_str());
    return 1;
  }

  std::vector<Entry> entries;
  bool failed = false;
  for (const auto& name : names) {
    Entry e{name, {}, {}};
    const fs::path file = dir / name / "results.json";
    try {
      std::ifstream in(file);
      if (!in) throw Invalid(file.string() + ": cannot be read (did the example run?)");
      try {
        e.doc = Json::parse(in);
      } catch (const Json::parse_error& pe) {
        throw Invalid(file.string() + ": not JSON: " + pe.what());
      }
      Validator(file.string()).run(e.doc);
      for (const auto& f : e.doc["figures"])
        if (!fs::is_regular_file(dir / name / f.get<std::string>()))
          std::fprintf(stderr, "make_report: warning: %s lists figure %s, which is not in %s\n", file.c_str(),
                       f.get<std::string>().c_str(), (dir / name).c_str());
    } catch (const Invalid& err) {
      e.error = err.what();
      std::fprintf(stderr, "make_report: %s\n", e.error.c_str());
      failed = true;
    }
    entries.push_back(std::move(e));
  }

  const auto lines = summary(entries);
  std::printf("\n");
  print_summary(lines);
  const std::string page = page_html(entries, lines, notes, elapsed);
  const fs::path report = dir / "report.html";
  io::detail::write_file_atomically(report, "make_report", [&](auto&& write) {
    write(std::as_bytes(std::span<const char>(page.data(), page.size())));
  });
  std::printf("\nwrote %s (%zu examples%s)\n", report.c_str(), entries.size(), failed ? ", some with errors" : "");
  return failed ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "make_report: %s\n", e.what());
  return 1;
}
