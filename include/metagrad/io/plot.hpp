// SPDX-License-Identifier: MIT
// Figures with text, drawn by cairo (Debian: libcairo2-dev; text in DejaVu Sans, fonts-dejavu-core):
// grouped bar charts with error bars, line charts, and labelled grids of images (rows × columns of
// heatmaps with titles and a caption). Axis labels, ticks, legends and titles come from cairo's
// text rendering, never from hand-drawn glyphs. PNGs are written atomically (encoded in memory,
// then io's temporary-file-and-rename writer). Link metagrad::plot (metagrad + cairo) to use it.
//
// Layout is fixed by the data, not by options: a chart is at least 720 pixels wide (wider for many
// bars), its plot area 320 pixels high, and a 40-pixel band at the top always holds the title
// (blank without one), so charts with and without titles line up.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include <cairo.h>

#include "metagrad/core/error.hpp"
#include "metagrad/io/detail/atomic_file.hpp"
#include "metagrad/io/image.hpp"

namespace metagrad::io {

/// One group member of a bar chart: a value per category and an optional error (± err).
struct BarSeries {
  std::string name;
  std::vector<double> mean, err;  // err may be empty
};

/// One curve of a line chart: points (x, y) with an optional vertical error bar (± err).
struct LineSeries {
  std::string name;
  std::vector<double> x, y, err;  // err may be empty
};

/// A rows × cols grid of images with row and column labels, a title and a caption.
struct ImageGrid {
  std::string title{};
  std::vector<std::string> row_labels{}, col_labels{};  // either may be empty (no labels on that side), not both
  std::vector<Image> cells{};                           // row-major, all of one size
  int cell_scale = 3;                                   // nearest-neighbour upscale factor for small images
  std::string caption{};                                // optional line under the grid
};

namespace detail::plot {

inline constexpr double kTitleBand = 40;  // charts: the title's band at the top, always reserved
inline constexpr double kTitleSize = 16, kLabelSize = 13, kTickSize = 11;
inline constexpr double kPlotHeight = 320;

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};
using Surface = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using Context = std::unique_ptr<cairo_t, ContextDeleter>;

struct Rgb {
  double r, g, b;
};
/// Matplotlib's tab10: distinct for ten series, readable on white.
inline Rgb palette(std::size_t i) {
  static constexpr Rgb colours[] = {{0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173},
                                    {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
                                    {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}, {0.737, 0.741, 0.133},
                                    {0.090, 0.745, 0.812}};
  return colours[i % 10];
}

/// A white RGB canvas and its context.
struct Canvas {
  Surface surface;
  Context cr;
  int width, height;

  Canvas(int w, int h, const char* op)
      : surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h)), cr(cairo_create(surface.get())), width(w),
        height(h) {
    check(cairo_status(cr.get()) == CAIRO_STATUS_SUCCESS, op, "cannot create a ", w, "x", h,
          " cairo surface: ", cairo_status_to_string(cairo_status(cr.get())));
    cairo_set_source_rgb(cr.get(), 1, 1, 1);
    cairo_paint(cr.get());
  }
  cairo_t* get() const { return cr.get(); }
};

/// Texts are measured before the canvas size is known, on a 1 × 1 scratch surface.
inline Canvas& measurer() {
  thread_local Canvas scratch(1, 1, "plot");
  return scratch;
}

inline void set_font(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

/// Width of `s` in pixels at `size`.
inline double text_width(const std::string& s, double size, bool bold = false) {
  cairo_t* cr = measurer().get();
  set_font(cr, size, bold);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  return e.x_advance;
}

/// The canvas width a chart's title needs: a long title widens the chart rather than being cut.
inline double title_width(const std::string& title) { return text_width(title, kTitleSize, true) + 24; }

inline double max_text_width(std::span<const std::string> texts, double size) {
  double w = 0;
  for (const auto& s : texts) w = std::max(w, text_width(s, size));
  return w;
}

enum class Align { left, center, right };

/// Draws `s` with its vertical middle (of the font's digits and capitals) at y and its left edge,
/// centre or right edge at x; `angle` (radians, clockwise on screen) turns it about (x, y).
inline void draw_text(cairo_t* cr, const std::string& s, double x, double y, double size, Align align,
                      double angle = 0, bool bold = false, Rgb colour = {0.1, 0.1, 0.1}) {
  if (s.empty()) return;
  set_font(cr, size, bold);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  const double dx = align == Align::left ? 0 : align == Align::center ? -e.x_advance / 2 : -e.x_advance;
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  cairo_set_source_rgb(cr, colour.r, colour.g, colour.b);
  cairo_move_to(cr, dx, 0.36 * size);  // ~half the cap height below the middle: the baseline
  cairo_show_text(cr, s.c_str());
  cairo_restore(cr);
}

inline void line(cairo_t* cr, double x0, double y0, double x1, double y1, double width, Rgb c) {
  cairo_set_source_rgb(cr, c.r, c.g, c.b);
  cairo_set_line_width(cr, width);
  cairo_move_to(cr, x0, y0);
  cairo_line_to(cr, x1, y1);
  cairo_stroke(cr);
}

/// A round step (1, 2 or 5 × 10^k) giving about `target` intervals over [lo, hi].
inline double nice_step(double lo, double hi, int target = 5) {
  const double raw = (hi - lo) / target, mag = std::pow(10.0, std::floor(std::log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/// An axis: data range [lo, hi] mapped onto pixels [p0, p1], with tick values and their labels.
struct Axis {
  double lo = 0, hi = 1, p0 = 0, p1 = 1;
  bool log = false;
  std::vector<double> ticks;
  std::vector<std::string> labels;

  double to_pixel(double v) const {
    const double u = log ? std::log10(v) : v;
    return p0 + (u - lo) / (hi - lo) * (p1 - p0);
  }
};

inline std::string tick_text(double v, int decimals) {
  char buf[64];
  if (std::abs(v) < 1e-12) v = 0;  // no "-0.0"
  if (decimals <= 6 && std::abs(v) < 1e7) std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  else std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

/// Linear ticks over [lo, hi], the range widened to whole steps.
inline Axis linear_axis(double lo, double hi) {
  if (!(hi > lo)) {
    const double d = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  Axis a;
  const double step = nice_step(lo, hi);
  a.lo = std::floor(lo / step + 1e-9) * step;
  a.hi = std::ceil(hi / step - 1e-9) * step;
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  for (double t = a.lo; t <= a.hi + step * 1e-6; t += step) {
    a.ticks.push_back(t);
    a.labels.push_back(tick_text(t, decimals));
  }
  return a;
}

/// Base-10 log ticks over [lo, hi] (both > 0): whole decades where the range spans one or more,
/// else round values placed on the log scale.
/// The lower end of an error bar on a log axis: y − err, or y/2 where that is not positive.
inline double log_bar_low(double y, double err) { return y - err > 0 ? y - err : y / 2; }

inline Axis log_axis(double lo, double hi) {
  Axis a;
  a.log = true;
  double l0 = std::log10(lo), l1 = std::log10(hi);
  if (l1 - l0 >= 1) {
    a.lo = std::floor(l0 + 1e-9);
    a.hi = std::ceil(l1 - 1e-9);
    // Over two decades or less, 2 and 5 times each power of ten too.
    const bool fine = a.hi - a.lo <= 2;
    for (double k = a.lo; k <= a.hi + 1e-9; k += 1)
      for (double m : {1.0, 2.0, 5.0}) {
        const double v = m * std::pow(10.0, k);
        if ((m == 1 || fine) && std::log10(v) <= a.hi + 1e-9) {
          a.ticks.push_back(v);
          a.labels.push_back(tick_text(v, 7));  // %g
        }
      }
    return a;
  }
  if (!(l1 > l0)) {
    l0 -= 0.1;
    l1 += 0.1;
  }
  a.lo = l0;
  a.hi = l1;
  const Axis lin = linear_axis(std::pow(10.0, l0), std::pow(10.0, l1));
  for (std::size_t i = 0; i < lin.ticks.size(); ++i)
    if (lin.ticks[i] > 0 && std::log10(lin.ticks[i]) >= l0 - 1e-9 && std::log10(lin.ticks[i]) <= l1 + 1e-9) {
      a.ticks.push_back(lin.ticks[i]);
      a.labels.push_back(lin.labels[i]);
    }
  return a;
}

/// Horizontal grid lines, the y ticks and their labels, the frame and the rotated y label.
inline void draw_y_axis(cairo_t* cr, const Axis& y, double x0, double x1, const std::string& label, double label_x) {
  for (std::size_t i = 0; i < y.ticks.size(); ++i) {
    const double py = y.to_pixel(y.ticks[i]);
    line(cr, x0, py, x1, py, 1, {0.9, 0.9, 0.9});
    line(cr, x0 - 5, py, x0, py, 1, {0.2, 0.2, 0.2});
    draw_text(cr, y.labels[i], x0 - 8, py, kTickSize, Align::right);
  }
  draw_text(cr, label, label_x, (y.p0 + y.p1) / 2, kLabelSize, Align::center, -std::numbers::pi / 2);
}

inline void draw_frame(cairo_t* cr, double x0, double y0, double x1, double y1) {
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, x0 + 0.5, y0 + 0.5, x1 - x0 - 1, y1 - y0 - 1);
  cairo_stroke(cr);
}

inline void error_bar(cairo_t* cr, double x, double y_lo, double y_hi, double cap) {
  const Rgb black{0.1, 0.1, 0.1};
  line(cr, x, y_lo, x, y_hi, 1.2, black);
  line(cr, x - cap, y_lo, x + cap, y_lo, 1.2, black);
  line(cr, x - cap, y_hi, x + cap, y_hi, 1.2, black);
}

/// The legend's width (0 when no series is named).
inline double legend_width(std::span<const std::string> names) {
  bool any = false;
  for (const auto& n : names) any = any || !n.empty();
  return any ? max_text_width(names, kLabelSize) + 44 : 0;
}

/// Legend entries from (x, y) downwards: a swatch (a box, or a line with a dot) and the name.
inline void draw_legend(cairo_t* cr, std::span<const std::string> names, double x, double y, bool lines) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    const double cy = y + 10 + 22 * static_cast<double>(i);
    const Rgb c = palette(i);
    if (lines) {
      line(cr, x + 4, cy, x + 24, cy, 2, c);
      cairo_arc(cr, x + 14, cy, 3, 0, 2 * std::numbers::pi);
      cairo_fill(cr);
    } else {
      cairo_set_source_rgb(cr, c.r, c.g, c.b);
      cairo_rectangle(cr, x + 6, cy - 6, 14, 12);
      cairo_fill(cr);
    }
    draw_text(cr, names[i], x + 30, cy, kLabelSize, Align::left);
  }
}

/// Encodes the canvas as PNG in memory and writes it to `path` atomically.
inline void save_png(const Canvas& canvas, const std::filesystem::path& path, const char* op) {
  cairo_surface_flush(canvas.surface.get());
  check(cairo_status(canvas.get()) == CAIRO_STATUS_SUCCESS, op, "drawing '", path.string(),
        "' failed: ", cairo_status_to_string(cairo_status(canvas.get())));
  std::vector<unsigned char> bytes;
  auto append = [](void* closure, const unsigned char* data, unsigned int length) {
    auto* out = static_cast<std::vector<unsigned char>*>(closure);
    out->insert(out->end(), data, data + length);
    return CAIRO_STATUS_SUCCESS;
  };
  const auto status = cairo_surface_write_to_png_stream(canvas.surface.get(), append, &bytes);
  check(status == CAIRO_STATUS_SUCCESS, op, "encoding '", path.string(), "' as PNG failed: ",
        cairo_status_to_string(status));
  io::detail::write_file_atomically(path, op, [&](auto&& write) {
    write(std::as_bytes(std::span<const unsigned char>(bytes)));
  });
}

inline void check_finite(std::span<const double> values, const char* op, const std::string& what) {
  for (std::size_t i = 0; i < values.size(); ++i)
    check(std::isfinite(values[i]), op, what, "[", i, "] = ", values[i], " is not finite");
}

}  // namespace detail::plot

/// A grouped bar chart: one group per category, one bar per series (coloured, named in the legend),
/// ± err as error bars, the y axis from 0 (or below, for negative values) with round ticks.
/// Category labels turn 45° when one is wider than its group. Throws metagrad::Error naming
/// write_bar_chart on empty, mismatched or non-finite input.
inline void write_bar_chart(const std::filesystem::path& png, const std::string& title, const std::string& y_label,
                            const std::vector<std::string>& categories, const std::vector<BarSeries>& series) {
  namespace p = detail::plot;
  constexpr const char* op = "write_bar_chart";
  check(!categories.empty() && !series.empty(), op, "needs at least one category and one series, got ",
        categories.size(), " categories and ", series.size(), " series");
  double lo = 0, hi = 0;
  for (const auto& s : series) {
    check(s.mean.size() == categories.size(), op, "series '", s.name, "' has ", s.mean.size(), " values for ",
          categories.size(), " categories");
    check(s.err.empty() || s.err.size() == s.mean.size(), op, "series '", s.name, "' has ", s.err.size(),
          " errors for ", s.mean.size(), " values (give none or one per value)");
    p::check_finite(s.mean, op, "series '" + s.name + "' mean");
    p::check_finite(s.err, op, "series '" + s.name + "' err");
    for (std::size_t i = 0; i < s.mean.size(); ++i) {
      const double e = s.err.empty() ? 0 : s.err[i];
      check(e >= 0, op, "series '", s.name, "' err[", i, "] = ", e, " is negative");
      lo = std::min(lo, s.mean[i] - e);
      hi = std::max(hi, s.mean[i] + e);
    }
  }
  std::vector<std::string> names;
  for (const auto& s : series) names.push_back(s.name);

  const double n_series = static_cast<double>(series.size());
  // Bars keep their width; groups share out whatever the canvas leaves beyond the minimum.
  const double n_cats = static_cast<double>(categories.size());
  const double bar = std::clamp(240.0 / n_series, 14.0, 36.0), min_group = n_series * bar + 24;
  p::Axis y = p::linear_axis(lo, hi);
  const double tick_w = p::max_text_width(y.labels, p::kTickSize), legend_w = p::legend_width(names);
  const double cat_w = p::max_text_width(categories, p::kLabelSize), diag = std::numbers::sqrt2 / 2;
  const double min_left = 24 + tick_w + 14;
  const int width = static_cast<int>(
      std::ceil(std::max({720.0, min_left + min_group * n_cats + legend_w + 24, p::title_width(title)})));
  const double group0 = (width - min_left - legend_w - 24) / n_cats;
  const bool rotate = cat_w > group0 - 6;
  const double first_overhang = rotate ? std::max(0.0, cat_w * diag - group0 / 2) : 0;
  const double left = std::max(min_left, first_overhang + 8);
  const double plot_w = width - left - legend_w - 24, group = plot_w / n_cats;
  const double cat_band = rotate ? cat_w * diag + p::kLabelSize + 12 : p::kLabelSize + 14;
  const double top = p::kTitleBand + 12, bottom = cat_band + 8;
  const int height = static_cast<int>(std::ceil(top + p::kPlotHeight + bottom));
  const double x0 = left, x1 = left + plot_w, y0 = top, y1 = height - bottom;
  y.p0 = y1;
  y.p1 = y0;

  p::Canvas canvas(width, height, op);
  cairo_t* cr = canvas.get();
  p::draw_text(cr, title, width / 2.0, p::kTitleBand / 2, p::kTitleSize, p::Align::center, 0, true);
  p::draw_y_axis(cr, y, x0, x1, y_label, 14);
  const double base = y.to_pixel(std::clamp(0.0, y.lo, y.hi));
  for (std::size_t c = 0; c < categories.size(); ++c) {
    const double cx = x0 + group * (static_cast<double>(c) + 0.5), gx = cx - n_series * bar / 2;
    for (std::size_t s = 0; s < series.size(); ++s) {
      const double bx = gx + bar * static_cast<double>(s), top_y = y.to_pixel(series[s].mean[c]);
      const auto colour = p::palette(s);
      cairo_set_source_rgb(cr, colour.r, colour.g, colour.b);
      cairo_rectangle(cr, bx + 1, std::min(base, top_y), bar - 2, std::abs(base - top_y));
      cairo_fill(cr);
      if (!series[s].err.empty() && series[s].err[c] > 0)
        p::error_bar(cr, bx + bar / 2, y.to_pixel(series[s].mean[c] - series[s].err[c]),
                     y.to_pixel(series[s].mean[c] + series[s].err[c]), std::min(5.0, bar / 3));
    }
    if (rotate) p::draw_text(cr, categories[c], cx + 4, y1 + 10, p::kLabelSize, p::Align::right, -std::numbers::pi / 4);
    else p::draw_text(cr, categories[c], cx, y1 + 14, p::kLabelSize, p::Align::center);
  }
  p::line(cr, x0, base, x1, base, 1, {0.2, 0.2, 0.2});
  p::draw_frame(cr, x0, y0, x1, y1);
  if (legend_w > 0) p::draw_legend(cr, names, x1 + 12, y0, false);
  p::save_png(canvas, png, op);
}

/// A line chart: one coloured curve with dots per series (named in the legend), ± err as error
/// bars, round ticks on both axes; log_x / log_y put x / y on a base-10 log scale (every value
/// there must be > 0; an error bar reaching 0 or below is cut at half its point's value).
/// Throws metagrad::Error naming write_line_chart on empty, mismatched or non-finite input.
inline void write_line_chart(const std::filesystem::path& png, const std::string& title, const std::string& x_label,
                             const std::string& y_label, const std::vector<LineSeries>& series, bool log_x = false,
                             bool log_y = false) {
  namespace p = detail::plot;
  constexpr const char* op = "write_line_chart";
  check(!series.empty(), op, "needs at least one series");
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const auto& s : series) {
    check(!s.x.empty() && s.x.size() == s.y.size(), op, "series '", s.name, "' needs as many y as x values (at least ",
          "one), got ", s.x.size(), " x and ", s.y.size(), " y");
    check(s.err.empty() || s.err.size() == s.y.size(), op, "series '", s.name, "' has ", s.err.size(),
          " errors for ", s.y.size(), " values (give none or one per value)");
    p::check_finite(s.x, op, "series '" + s.name + "' x");
    p::check_finite(s.y, op, "series '" + s.name + "' y");
    p::check_finite(s.err, op, "series '" + s.name + "' err");
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      check(!log_x || s.x[i] > 0, op, "log_x needs x > 0, series '", s.name, "' has x[", i, "] = ", s.x[i]);
      check(!log_y || s.y[i] > 0, op, "log_y needs y > 0, series '", s.name, "' has y[", i, "] = ", s.y[i]);
      const double e = s.err.empty() ? 0 : s.err[i];
      check(e >= 0, op, "series '", s.name, "' err[", i, "] = ", e, " is negative");
      xlo = std::min(xlo, s.x[i]);
      xhi = std::max(xhi, s.x[i]);
      ylo = std::min(ylo, log_y ? p::log_bar_low(s.y[i], e) : s.y[i] - e);
      yhi = std::max(yhi, s.y[i] + e);
    }
  }
  std::vector<std::string> names;
  for (const auto& s : series) names.push_back(s.name);

  p::Axis x = log_x ? p::log_axis(xlo, xhi) : p::linear_axis(xlo, xhi);
  p::Axis y = log_y ? p::log_axis(ylo, yhi) : p::linear_axis(ylo, yhi);
  const double tick_w = p::max_text_width(y.labels, p::kTickSize);
  const double left = 24 + tick_w + 14, legend_w = p::legend_width(names);
  const double top = p::kTitleBand + 12, bottom = 2 * p::kLabelSize + 30;
  const int width = static_cast<int>(std::ceil(std::max({720.0, left + 520 + legend_w + 24, p::title_width(title)})));
  const double plot_w = width - left - legend_w - 24;
  const int height = static_cast<int>(std::ceil(top + p::kPlotHeight + bottom));
  const double x0 = left, x1 = left + plot_w, y0 = top, y1 = height - bottom;
  x.p0 = x0 + 10;
  x.p1 = x1 - 10;
  y.p0 = y1;
  y.p1 = y0;

  p::Canvas canvas(width, height, op);
  cairo_t* cr = canvas.get();
  p::draw_text(cr, title, width / 2.0, p::kTitleBand / 2, p::kTitleSize, p::Align::center, 0, true);
  p::draw_y_axis(cr, y, x0, x1, y_label, 14);
  for (std::size_t i = 0; i < x.ticks.size(); ++i) {
    const double px = x.to_pixel(x.ticks[i]);
    p::line(cr, px, y0, px, y1, 1, {0.9, 0.9, 0.9});
    p::line(cr, px, y1, px, y1 + 5, 1, {0.2, 0.2, 0.2});
    p::draw_text(cr, x.labels[i], px, y1 + 14, p::kTickSize, p::Align::center);
  }
  p::draw_text(cr, x_label, (x0 + x1) / 2, y1 + 22 + p::kLabelSize, p::kLabelSize, p::Align::center);
  for (std::size_t s = 0; s < series.size(); ++s) {
    const auto& ser = series[s];
    const auto colour = p::palette(s);
    cairo_set_source_rgb(cr, colour.r, colour.g, colour.b);
    cairo_set_line_width(cr, 2);
    for (std::size_t i = 0; i < ser.x.size(); ++i) {
      if (i == 0) cairo_move_to(cr, x.to_pixel(ser.x[i]), y.to_pixel(ser.y[i]));
      else cairo_line_to(cr, x.to_pixel(ser.x[i]), y.to_pixel(ser.y[i]));
    }
    cairo_stroke(cr);
    for (std::size_t i = 0; i < ser.x.size(); ++i) {
      const double px = x.to_pixel(ser.x[i]);
      if (!ser.err.empty() && ser.err[i] > 0)
        p::error_bar(cr, px, y.to_pixel(log_y ? p::log_bar_low(ser.y[i], ser.err[i]) : ser.y[i] - ser.err[i]),
                     y.to_pixel(ser.y[i] + ser.err[i]), 4);
      cairo_set_source_rgb(cr, colour.r, colour.g, colour.b);
      cairo_arc(cr, px, y.to_pixel(ser.y[i]), 3.5, 0, 2 * std::numbers::pi);
      cairo_fill(cr);
    }
  }
  p::draw_frame(cr, x0, y0, x1, y1);
  if (legend_w > 0) p::draw_legend(cr, names, x1 + 12, y0, true);
  p::save_png(canvas, png, op);
}

/// A labelled grid of images: the title on top, column labels above the columns (turned 45° when
/// one is wider than a cell), row labels left of the rows, each cell upscaled cell_scale times and
/// framed, the caption underneath. The grid is (row labels or cells / columns) × (column labels or
/// cells / rows). Throws metagrad::Error naming write_image_grid when the cells do not fill the
/// grid, differ in size, or are not valid images.
inline void write_image_grid(const std::filesystem::path& png, const ImageGrid& grid) {
  namespace p = detail::plot;
  constexpr const char* op = "write_image_grid";
  check(!grid.cells.empty(), op, "needs at least one cell");
  check(!grid.row_labels.empty() || !grid.col_labels.empty(), op,
        "needs row_labels or col_labels to know the grid's shape, got neither for ", grid.cells.size(), " cells");
  check(grid.cell_scale >= 1 && grid.cell_scale <= 64, op, "cell_scale must be in [1, 64], got ", grid.cell_scale);
  const std::size_t n = grid.cells.size();
  const std::size_t rows = !grid.row_labels.empty() ? grid.row_labels.size() : n / grid.col_labels.size();
  const std::size_t cols = !grid.col_labels.empty() ? grid.col_labels.size() : n / grid.row_labels.size();
  check(rows * cols == n && rows > 0, op, "has ", n, " cells for ", grid.row_labels.size(), " row labels and ",
        grid.col_labels.size(), " column labels (need rows x cols, row-major)");
  const Image& first = grid.cells.front();
  for (std::size_t k = 0; k < n; ++k) {
    const Image& c = grid.cells[k];
    check(c.width > 0 && c.height > 0 && (c.channels == 1 || c.channels == 3 || c.channels == 4) &&
              c.pixels.size() == static_cast<std::size_t>(c.width) * c.height * c.channels,
          op, "cell ", k, " (", c.width, "x", c.height, "x", c.channels, ", ", c.pixels.size(),
          " bytes) is not a valid 8-bit image");
    check(c.width == first.width && c.height == first.height, op, "cell ", k, " is ", c.width, "x", c.height,
          ", cell 0 is ", first.width, "x", first.height, " (all cells must have one size)");
  }

  const double s = grid.cell_scale, cw = first.width * s, ch = first.height * s, pad = 6;
  const double diag = std::numbers::sqrt2 / 2;
  const double row_w = p::max_text_width(grid.row_labels, p::kLabelSize);
  const double col_w = p::max_text_width(grid.col_labels, p::kLabelSize);
  const bool rotate = col_w > cw + pad - 4;
  const double title_band = grid.title.empty() ? 0 : p::kTitleBand;
  const double col_band = grid.col_labels.empty() ? 0 : rotate ? col_w * diag + p::kLabelSize + 8 : p::kLabelSize + 12;
  const double caption_band = grid.caption.empty() ? 0 : p::kLabelSize + 16;
  const double left = grid.row_labels.empty() ? pad : row_w + 16;
  const double grid_w = static_cast<double>(cols) * (cw + pad) + pad;
  const double right_overhang = rotate ? std::max(0.0, col_w * diag - cw / 2) : 0;
  const double need_w = std::max({left + grid_w + right_overhang, p::title_width(grid.title),
                                  p::text_width(grid.caption, p::kLabelSize) + 24});
  const int width = static_cast<int>(std::ceil(need_w));
  const int height =
      static_cast<int>(std::ceil(title_band + col_band + static_cast<double>(rows) * (ch + pad) + pad + caption_band));
  const double gx = left, gy = title_band + col_band;

  p::Canvas canvas(width, height, op);
  cairo_t* cr = canvas.get();
  p::draw_text(cr, grid.title, width / 2.0, title_band / 2, p::kTitleSize, p::Align::center, 0, true);
  for (std::size_t c = 0; c < grid.col_labels.size(); ++c) {
    const double cx = gx + pad + static_cast<double>(c) * (cw + pad) + cw / 2;
    if (rotate) p::draw_text(cr, grid.col_labels[c], cx - 4, gy - 6, p::kLabelSize, p::Align::left, -std::numbers::pi / 4);
    else p::draw_text(cr, grid.col_labels[c], cx, gy - p::kLabelSize / 2 - 4, p::kLabelSize, p::Align::center);
  }
  for (std::size_t r = 0; r < grid.row_labels.size(); ++r)
    p::draw_text(cr, grid.row_labels[r], left - 10, gy + pad + static_cast<double>(r) * (ch + pad) + ch / 2,
                 p::kLabelSize, p::Align::right);

  // Cells: nearest-neighbour upscaled straight into an RGB24 surface, painted at whole pixels.
  const int sw = first.width * grid.cell_scale, sh = first.height * grid.cell_scale;
  p::Surface cell(cairo_image_surface_create(CAIRO_FORMAT_RGB24, sw, sh));
  const int stride = cairo_image_surface_get_stride(cell.get());
  for (std::size_t k = 0; k < n; ++k) {
    const Image& img = grid.cells[k];
    cairo_surface_flush(cell.get());
    unsigned char* data = cairo_image_surface_get_data(cell.get());
    for (int y = 0; y < sh; ++y) {
      auto* row = reinterpret_cast<std::uint32_t*>(data + static_cast<std::ptrdiff_t>(y) * stride);
      for (int x = 0; x < sw; ++x) {
        const std::uint8_t* px = img.at(x / grid.cell_scale, y / grid.cell_scale);
        std::uint32_t r = px[0], g = px[0], b = px[0];
        if (img.channels >= 3) {
          g = px[1];
          b = px[2];
        }
        if (img.channels == 4) {  // over white
          const std::uint32_t a = px[3];
          r = (r * a + 255 * (255 - a)) / 255;
          g = (g * a + 255 * (255 - a)) / 255;
          b = (b * a + 255 * (255 - a)) / 255;
        }
        row[x] = 0xFF000000u | (r << 16) | (g << 8) | b;
      }
    }
    cairo_surface_mark_dirty(cell.get());
    const double x = std::round(gx + pad + static_cast<double>(k % cols) * (cw + pad));
    const double y = std::round(gy + pad + static_cast<double>(k / cols) * (ch + pad));
    cairo_set_source_surface(cr, cell.get(), x, y);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x - 0.5, y - 0.5, sw + 1, sh + 1);
    cairo_stroke(cr);
  }
  p::draw_text(cr, grid.caption, width / 2.0, height - caption_band / 2 - 2, p::kLabelSize, p::Align::center);
  p::save_png(canvas, png, op);
}

}  // namespace metagrad::io
