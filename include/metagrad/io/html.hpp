// SPDX-License-Identifier: MIT
// Token explanations as HTML: each word on a background shaded by its score (red for positive,
// blue for negative, white at zero, scaled by the largest |score| of its line unless a scale is
// given), with the score in a tooltip. A page holds one line per explained text; it is written
// atomically like every other file metagrad writes.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metagrad/core/error.hpp"
#include "metagrad/io/detail/atomic_file.hpp"

namespace metagrad::io {

/// One explained text: its tokens, a score per token, and an optional caption (e.g. the label).
struct TokenLine {
  std::vector<std::string> tokens;
  std::vector<double> scores;
  std::string caption;
};

/// Text with &, <, >, " and ' escaped.
inline std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

/// The tokens of `line` as shaded <span>s in one <div>. scale <= 0: the line's max |score|.
inline std::string token_line_html(const TokenLine& line, double scale = 0) {
  check(line.tokens.size() == line.scores.size(), "token_line_html", line.tokens.size(), " tokens but ",
        line.scores.size(), " scores");
  for (double s : line.scores) check(std::isfinite(s), "token_line_html", "score ", s, " is not finite");
  if (scale <= 0)
    for (double s : line.scores) scale = std::max(scale, std::abs(s));
  std::string out = "<div class=\"line\">";
  if (!line.caption.empty()) out += "<span class=\"caption\">" + html_escape(line.caption) + "</span> ";
  char buf[96];
  for (std::size_t i = 0; i < line.tokens.size(); ++i) {
    const double v = scale > 0 ? std::clamp(line.scores[i] / scale, -1.0, 1.0) : 0.0;
    // Opacity carries the magnitude, so the text stays readable on any shade.
    const int red = v >= 0 ? 220 : 40, blue = v >= 0 ? 40 : 220;
    std::snprintf(buf, sizeof buf, "<span style=\"background:rgba(%d,40,%d,%.3f)\" title=\"%.4g\">", red, blue,
                  std::abs(v) * 0.8, line.scores[i]);
    out += buf;
    out += html_escape(line.tokens[i]);
    out += "</span> ";
  }
  out += "</div>\n";
  return out;
}

/// A whole page: a title and one shaded line per text.
inline std::string token_page_html(std::string_view title, std::span<const TokenLine> lines, double scale = 0) {
  std::string out = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
                    "</title>\n<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:2}"
                    ".line{margin:.6em 0}.line span{padding:.1em .15em;border-radius:.2em}"
                    ".caption{font-weight:bold}</style></head><body>\n<h1>" +
                    html_escape(title) + "</h1>\n";
  for (const auto& line : lines) out += token_line_html(line, scale);
  out += "</body></html>\n";
  return out;
}

/// Writes token_page_html(...) to `path`, atomically.
inline void write_token_html(const std::filesystem::path& path, std::string_view title,
                             std::span<const TokenLine> lines, double scale = 0) {
  const std::string page = token_page_html(title, lines, scale);
  detail::write_file_atomically(path, "write_token_html", [&](auto&& write) {
    write(std::as_bytes(std::span<const char>(page.data(), page.size())));
  });
}

}  // namespace metagrad::io
