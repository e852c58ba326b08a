// SPDX-License-Identifier: MIT
// The fixture of the report test (test_report.sh): two small examples' results.json, written with
// examples::Results, and their figures drawn by io/plot, under DIR/fake_sweep and DIR/fake_paper;
// with --broken also DIR/broken/results.json, whose second row lacks a metric's std.
// Text that must be escaped on the page ("<img ... id=injected>") sits in the paper and a setting.
//   report_fixture DIR [--broken]
#include <cstdio>
#include <filesystem>
#include <string>

#include "common.hpp"
#include "metagrad/io/plot.hpp"

using namespace metagrad;
using namespace metagrad::examples;
namespace fs = std::filesystem;

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(stderr, "usage: report_fixture DIR [--broken]\n");
    return 2;
  }
  const fs::path dir(argv[1]);
  const bool broken = argc > 2 && std::string(argv[2]) == "--broken";
  const Json data = {{"name", "toy"}, {"source", "made up"}, {"n_train", 80}, {"n_val", 10}, {"n_test", 10}};

  // A method swept over lambda, three seeds, two figures.
  {
    const fs::path out = dir / "fake_sweep";
    fs::create_directories(out);
    Results r("fake_sweep", true, "A <img src=x id=injected> & Co. paper (fixture)", data, {0, 1, 2},
              "best valid acc per method");
    r.add_row("erm", {{"note", "<b>bold?</b>"}}, true, {{"test_acc", {0.5, 0.6, 0.7}}});
    for (double lambda : {1.0, 10.0, 100.0})
      r.add_row("rrr", {{"lambda", lambda}}, lambda == 10.0,
                {{"test_acc", {0.7, 0.75, 0.8}}, {"test_worst_group_acc", {0.4, 0.5, 0.45}}});
    io::write_bar_chart(out / "accuracy.png", "Accuracy", "test accuracy", {"erm", "rrr"},
                        {{"test_acc", {0.6, 0.75}, {0.1, 0.05}}});
    io::write_line_chart(out / "sweep.png", "RRR over lambda", "lambda", "test accuracy",
                         {{"rrr", {1, 10, 100}, {0.7, 0.75, 0.72}, {}}}, true);
    r.add_figure("accuracy.png");
    r.add_figure("sweep.png");
    r.write(out, 1.5);
  }
  // One seed, the paper's figures beside ours.
  {
    const fs::path out = dir / "fake_paper";
    fs::create_directories(out);
    Results r("fake_paper", false, "Fixture paper (2023)", data, {7}, "none");
    r.add_row("ibp_ex", {}, true, {{"test_acc", {0.9}}});
    // A curve over n: one selected row (the headline point), the summary names its point.
    r.doc["curve_keys"] = {"n"};
    for (const int n : {10, 20})
      for (const double lambda : {1.0, 2.0})
        r.add_row("penalty", {{"n", n}, {"lambda", lambda}}, n == 10 && lambda == 2.0, {{"test_error", {0.1 * lambda}}});
    r.add_row("costly", {}, true, {{"test_acc", {0.4, 0.6}}});  // a part run on seeds of its own
    r.doc["rows"].back()["seeds"] = {7, 8};
    r.doc["paper_figures"] = {{"ibp_ex.test_acc", 0.91}, {"cdep.test_acc", 0.31}};
    io::ImageGrid grid{.title = "A grid", .col_labels = {"a", "b"}, .cells = {io::Image(4, 4, 3, 0), io::Image(4, 4, 3, 200)}};
    io::write_image_grid(out / "grid.png", grid);
    r.add_figure("grid.png");
    r.write(out, 2.0);
  }
  if (broken) {
    const fs::path out = dir / "broken";
    fs::create_directories(out);
    Results r("broken", true, "p", data, {0}, "s");
    r.add_row("erm", {}, true, {{"test_acc", {0.5}}});
    r.add_row("rrr", {}, true, {{"test_acc", {0.5}}});
    r.doc["rows"][1]["metrics"]["test_acc"].erase("std");
    r.write(out, 0.1);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "report_fixture: %s\n", e.what());
  return 1;
}
