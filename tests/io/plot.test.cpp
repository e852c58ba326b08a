// SPDX-License-Identifier: MIT
// The cairo figures: every writer leaves a PNG that decodes to the size its layout promises, text
// is really drawn (title band, labels), and bad input is refused with the writer's name.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <cairo.h>

#include "metagrad/io/plot.hpp"
#include "test_util.hpp"

using namespace metagrad;

namespace plot_test {

std::filesystem::path temp_png(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("metagrad-plot-test-" + name + ".png");
}

/// A decoded PNG: its size and 0xRRGGBB pixels.
struct Decoded {
  int width = 0, height = 0;
  std::vector<std::uint32_t> rgb;
  std::uint32_t at(int x, int y) const { return rgb[static_cast<std::size_t>(y) * width + x]; }
  /// Pixels in [x0, x1) × [y0, y1) that are not white.
  int ink(int x0, int y0, int x1, int y1) const {
    int n = 0;
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) n += at(x, y) != 0xFFFFFF;
    return n;
  }
};

/// Reads `path` back with cairo's own PNG reader; also checks the signature and the IHDR size.
Decoded decode(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
  REQUIRE(bytes.size() > 33);
  const std::vector<std::uint8_t> signature{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  CHECK(std::equal(signature.begin(), signature.end(), bytes.begin()));
  CHECK(std::string(bytes.begin() + 12, bytes.begin() + 16) == "IHDR");
  auto be32 = [&](std::size_t at) {
    return static_cast<int>((std::uint32_t{bytes[at]} << 24) | (std::uint32_t{bytes[at + 1]} << 16) |
                            (std::uint32_t{bytes[at + 2]} << 8) | bytes[at + 3]);
  };
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  REQUIRE(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS);
  Decoded d{cairo_image_surface_get_width(s), cairo_image_surface_get_height(s), {}};
  CHECK(be32(16) == d.width);
  CHECK(be32(20) == d.height);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  for (int y = 0; y < d.height; ++y)
    for (int x = 0; x < d.width; ++x)
      d.rgb.push_back(reinterpret_cast<const std::uint32_t*>(data + static_cast<std::ptrdiff_t>(y) * stride)[x] &
                      0xFFFFFFu);
  cairo_surface_destroy(s);
  return d;
}

const std::vector<std::string> kCategories{"erm", "rrr", "ibp_ex"};
std::vector<io::BarSeries> two_series() {
  return {{"macro", {0.6, 0.9, 0.95}, {0.02, 0.01, 0.01}}, {"worst group", {0.3, 0.8, 0.9}, {}}};
}

/// An 8 × 6 image: a black diagonal on white.
io::Image small_image() {
  io::Image img(8, 6, 3, 255);
  for (int i = 0; i < 6; ++i) std::fill_n(img.at(i, i), 3, std::uint8_t{0});
  return img;
}

}  // namespace plot_test

TEST_SUITE("io.plot") {
  using namespace plot_test;

  TEST_CASE("io.plot: a bar chart decodes, is at least 720x400, and its title is drawn in the title band") {
    const auto titled = temp_png("bar-titled"), untitled = temp_png("bar-untitled");
    io::write_bar_chart(titled, "Accuracy by method", "accuracy", kCategories, two_series());
    io::write_bar_chart(untitled, "", "accuracy", kCategories, two_series());
    const auto a = decode(titled), b = decode(untitled);
    CHECK(a.width >= 720);
    CHECK(a.height >= 400);
    CHECK((a.width == b.width && a.height == b.height));  // the band is reserved either way
    const int band = static_cast<int>(io::detail::plot::kTitleBand);
    CHECK(a.ink(0, 0, a.width, band) > 50);
    CHECK(b.ink(0, 0, b.width, band) == 0);
    // Below the band both are the same chart.
    CHECK(a.ink(0, band, a.width, a.height) == b.ink(0, band, b.width, b.height));
    CHECK(a.ink(0, band, a.width, a.height) > 1000);  // bars, axes, labels
    std::filesystem::remove(titled);
    std::filesystem::remove(untitled);
  }

  TEST_CASE("io.plot: a bar chart widens with more categories and turns long category labels") {
    std::vector<std::string> many;
    io::BarSeries one{"", {}, {}};
    for (int i = 0; i < 30; ++i) {
      many.push_back("c" + std::to_string(i));
      one.mean.push_back(i * 0.1);
    }
    const auto path = temp_png("bar-many");
    io::write_bar_chart(path, "t", "y", many, {one});
    const auto wide = decode(path);
    CHECK(wide.width > 720);
    // Long labels turned 45 degrees need more room below the axis than short ones.
    std::vector<std::string> short_names, long_names;
    for (int i = 0; i < 8; ++i) {
      short_names.push_back(std::to_string(i));
      long_names.push_back("a rather long category label " + std::to_string(i));
    }
    const io::BarSeries eight{"", std::vector<double>(8, 1.0), {}};
    io::write_bar_chart(path, "t", "y", short_names, {eight});
    const auto short_labels = decode(path);
    io::write_bar_chart(path, "t", "y", long_names, {eight});
    const auto long_labels = decode(path);
    CHECK(long_labels.height > short_labels.height);
    std::filesystem::remove(path);
  }

  TEST_CASE("io.plot: the y label and the legend are drawn where they belong") {
    const auto path = temp_png("bar-labels");
    io::write_bar_chart(path, "", "", kCategories, {{"", {1, 2, 3}, {}}});
    const auto bare = decode(path);
    io::write_bar_chart(path, "", "accuracy", kCategories, {{"named", {1, 2, 3}, {}}});
    const auto labelled = decode(path);
    const int band = static_cast<int>(io::detail::plot::kTitleBand);
    // The rotated y label sits in the leftmost 22 pixels; the legend at the right edge.
    CHECK(bare.ink(0, band, 22, bare.height) == 0);
    CHECK(labelled.ink(0, band, 22, labelled.height) > 30);
    CHECK(bare.ink(bare.width - 20, band, bare.width, band + 60) == 0);
    CHECK(labelled.ink(labelled.width - 60, band, labelled.width, band + 60) > 10);
    std::filesystem::remove(path);
  }

  TEST_CASE("io.plot: a line chart decodes on linear and log x axes") {
    const auto path = temp_png("line");
    const std::vector<io::LineSeries> series{{"reweighted", {1, 10, 100}, {0.6, 0.8, 0.86}, {0.01, 0.02, 0.01}},
                                             {"uniform", {1, 10, 100}, {0.65, 0.7, 0.74}, {}}};
    io::write_line_chart(path, "Test accuracy", "epoch", "accuracy", series);
    const auto lin = decode(path);
    io::write_line_chart(path, "Test accuracy", "epoch", "accuracy", series, true);
    const auto log = decode(path);
    CHECK((lin.width >= 720 && lin.height >= 400));
    CHECK((log.width == lin.width && log.height == lin.height));
    CHECK(lin.ink(0, 0, lin.width, static_cast<int>(io::detail::plot::kTitleBand)) > 50);
    CHECK(lin.rgb != log.rgb);  // the points moved
    // Log y, with an error bar that reaches below 0 (cut at half its point).
    io::write_line_chart(path, "Test error", "n", "error", {{"erm", {10, 100}, {1.2, 0.4}, {1.5, 0.1}}}, true, true);
    const auto log_y = decode(path);
    CHECK(log_y.width >= 720);
    CHECK(log_y.rgb != log.rgb);
    std::filesystem::remove(path);
  }

  TEST_CASE("io.plot: a title longer than the chart widens it instead of being cut at the edges") {
    const std::string title(140, 'W');
    const auto line = temp_png("line-long-title"), bar = temp_png("bar-long-title");
    io::write_line_chart(line, title, "N", "accuracy", {{"a", {1, 2}, {0.5, 0.7}, {}}});
    io::write_bar_chart(bar, title, "accuracy", kCategories, two_series());
    const int band = static_cast<int>(io::detail::plot::kTitleBand);
    for (const auto& png : {line, bar}) {
      const auto d = decode(png);
      CHECK(d.width > 720);
      CHECK(d.width >= static_cast<int>(io::detail::plot::text_width(title, io::detail::plot::kTitleSize, true)));
      CHECK(d.ink(0, 0, d.width, band) > 50);
      CHECK(d.ink(0, 0, 8, band) == 0);  // a margin on both sides: nothing was cut
      CHECK(d.ink(d.width - 8, 0, d.width, band) == 0);
      std::filesystem::remove(png);
    }
  }

  TEST_CASE("io.plot: an image grid is as large as its upscaled cells plus labels, title and caption") {
    const auto path = temp_png("grid");
    io::ImageGrid grid{.title = "",
                       .row_labels = {},
                       .col_labels = {"a", "b", "c"},
                       .cells = std::vector<io::Image>(6, small_image()),
                       .cell_scale = 2,
                       .caption = ""};
    io::write_image_grid(path, grid);
    const auto s2 = decode(path);
    grid.cell_scale = 4;
    io::write_image_grid(path, grid);
    const auto s4 = decode(path);
    // 3 columns × 8 pixels and 2 rows × 6 pixels, each twice as wide at scale 4 as at scale 2.
    CHECK(s4.width - s2.width == 3 * 8 * 2);
    CHECK(s4.height - s2.height == 2 * 6 * 2);
    // The cells are there, upscaled: a black diagonal of 4 × 4 blocks.
    int black = 0;
    for (auto p : s4.rgb) black += p == 0;
    CHECK(black == 6 * 6 * 16);
    // A title, row labels and a caption each add room and ink.
    grid.title = "Explanations";
    grid.row_labels = {"#0: 7", "#1: 2"};
    grid.caption = "red: for the class, blue: against";
    io::write_image_grid(path, grid);
    const auto full = decode(path);
    CHECK(full.width > s4.width);
    CHECK(full.height >= s4.height + 40);
    CHECK(full.ink(0, 0, full.width, 30) > 50);                            // title
    CHECK(full.ink(0, full.height - 20, full.width, full.height) > 50);   // caption
    std::filesystem::remove(path);
  }

  TEST_CASE("io.plot: bad input is refused with the writer's name and the reason") {
    const auto path = temp_png("bad");
    METAGRAD_CHECK_ERROR(io::write_bar_chart(path, "", "", {}, two_series()), "write_bar_chart", "at least one");
    METAGRAD_CHECK_ERROR(io::write_bar_chart(path, "", "", kCategories, {}), "write_bar_chart", "one series");
    METAGRAD_CHECK_ERROR(io::write_bar_chart(path, "", "", kCategories, {{"s", {1, 2}, {}}}), "write_bar_chart",
                         "'s' has 2 values for 3 categories");
    METAGRAD_CHECK_ERROR(io::write_bar_chart(path, "", "", kCategories, {{"s", {1, 2, 3}, {1}}}), "write_bar_chart",
                         "1 errors for 3 values");
    METAGRAD_CHECK_ERROR(io::write_bar_chart(path, "", "", kCategories, {{"s", {1, NAN, 3}, {}}}),
                         "write_bar_chart", "mean[1]", "not finite");
    METAGRAD_CHECK_ERROR(io::write_bar_chart(path, "", "", kCategories, {{"s", {1, 2, 3}, {0, -1, 0}}}),
                         "write_bar_chart", "negative");
    METAGRAD_CHECK_ERROR(io::write_line_chart(path, "", "", "", {}), "write_line_chart", "one series");
    METAGRAD_CHECK_ERROR(io::write_line_chart(path, "", "", "", {{"s", {1, 2}, {1}, {}}}), "write_line_chart",
                         "2 x and 1 y");
    METAGRAD_CHECK_ERROR(io::write_line_chart(path, "", "", "", {{"s", {1, INFINITY}, {1, 2}, {}}}),
                         "write_line_chart", "x[1]", "not finite");
    METAGRAD_CHECK_ERROR(io::write_line_chart(path, "", "", "", {{"s", {0, 1}, {1, 2}, {}}}, true),
                         "write_line_chart", "log_x needs x > 0");
    METAGRAD_CHECK_ERROR(io::write_line_chart(path, "", "", "", {{"s", {1, 2}, {0, 2}, {}}}, false, true),
                         "write_line_chart", "log_y needs y > 0", "y[0] = 0");
    io::ImageGrid grid{.col_labels = {"a", "b"}, .cells = std::vector<io::Image>(3, small_image())};
    METAGRAD_CHECK_ERROR(io::write_image_grid(path, grid), "write_image_grid", "3 cells");
    grid.cells = {small_image(), io::Image(4, 4, 3)};
    METAGRAD_CHECK_ERROR(io::write_image_grid(path, grid), "write_image_grid", "cell 1 is 4x4");
    grid.cells = {small_image(), small_image()};
    grid.col_labels.clear();
    METAGRAD_CHECK_ERROR(io::write_image_grid(path, grid), "write_image_grid", "row_labels or col_labels");
    grid.col_labels = {"a", "b"};
    grid.cell_scale = 0;
    METAGRAD_CHECK_ERROR(io::write_image_grid(path, grid), "write_image_grid", "cell_scale");
    CHECK_FALSE(std::filesystem::exists(path));  // nothing was written on the way
  }

  TEST_CASE("io.plot: writing into a folder that does not exist fails naming the path, leaving nothing") {
    const auto dir = std::filesystem::temp_directory_path() / "metagrad-plot-test-missing-dir";
    std::filesystem::remove_all(dir);
    METAGRAD_CHECK_ERROR(io::write_bar_chart(dir / "x.png", "", "", kCategories, two_series()), "write_bar_chart",
                         "metagrad-plot-test-missing-dir");
    CHECK_FALSE(std::filesystem::exists(dir));
  }
}
