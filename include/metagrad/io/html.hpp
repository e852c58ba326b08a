// SPDX-License-Identifier: MIT
// Token explanations as HTML: each word on a background shaded by its score (red for positive,
// blue for negative, white at zero, scaled by the largest |score| of its line unless a scale is
// given), with the score in a tooltip. A page holds one line per explained text; it is written
// atomically like every other file metagrad writes. A hierarchy of spans (1-D ACD) is a table
// of such lines, one per level, each span framed and shaded by its own score.
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

/// One text's hierarchy of contiguous spans, e.g. a 1-D ACD hierarchy: for every level, the
/// region of each token (−1: in none yet) and the score of each region.
struct SpanHierarchy {
  std::vector<std::string> tokens;
  std::vector<std::vector<int>> region;    // [level][token]
  std::vector<std::vector<double>> score;  // [level][region]
  std::string caption;
};

/// The hierarchy as a table, one row per level (in the given order): each run of tokens in one
/// region is a framed span shaded by the region's score (as token_line_html shades a word, the
/// score in its tooltip); tokens in no region are grey. scale <= 0: each level against its own
/// largest |score| (a whole sequence usually scores far above its single words, which would
/// otherwise wash the first levels out).
inline std::string span_hierarchy_html(const SpanHierarchy& h, double scale = 0) {
  constexpr const char* op = "span_hierarchy_html";
  check(h.region.size() == h.score.size(), op, h.region.size(), " levels of regions but ", h.score.size(),
        " levels of scores");
  for (std::size_t l = 0; l < h.region.size(); ++l) {
    check(h.region[l].size() == h.tokens.size(), op, "level ", l, " gives a region to ", h.region[l].size(),
          " tokens, the text has ", h.tokens.size());
    for (int r : h.region[l])
      check(r >= -1 && r < static_cast<int>(h.score[l].size()), op, "level ", l, " names region ", r, " of ",
            h.score[l].size());
    for (double s : h.score[l]) check(std::isfinite(s), op, "score ", s, " at level ", l, " is not finite");
  }
  std::string out = "<table class=\"hierarchy\">";
  if (!h.caption.empty()) out += "<caption>" + html_escape(h.caption) + "</caption>";
  char buf[128];
  for (std::size_t l = 0; l < h.region.size(); ++l) {
    double level_scale = scale;
    if (level_scale <= 0)
      for (double s : h.score[l]) level_scale = std::max(level_scale, std::abs(s));
    std::snprintf(buf, sizeof buf, "<tr><th>%zu</th><td>", l);
    out += buf;
    for (std::size_t i = 0; i < h.tokens.size();) {
      const int r = h.region[l][i];
      std::size_t end = i + 1;
      while (end < h.tokens.size() && h.region[l][end] == r) ++end;
      if (r < 0) {
        out += "<span class=\"free\">";
      } else {
        const double score = h.score[l][static_cast<std::size_t>(r)];
        const double v = level_scale > 0 ? std::clamp(score / level_scale, -1.0, 1.0) : 0.0;
        std::snprintf(buf, sizeof buf, "<span class=\"region\" style=\"background:rgba(%d,40,%d,%.3f)\" title=\"%.4g\">",
                      v >= 0 ? 220 : 40, v >= 0 ? 40 : 220, std::abs(v) * 0.8, score);
        out += buf;
      }
      for (std::size_t t = i; t < end; ++t) out += (t > i ? " " : "") + html_escape(h.tokens[t]);
      out += "</span> ";
      i = end;
    }
    out += "</td></tr>";
  }
  out += "</table>\n";
  return out;
}

/// A page of span hierarchies under a title and an optional introduction (plain text), written atomically.
inline void write_span_hierarchy_html(const std::filesystem::path& path, std::string_view title,
                                      std::span<const SpanHierarchy> texts, std::string_view intro = {},
                                      double scale = 0) {
  std::string page = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
                     "</title>\n<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;line-height:1.9}"
                     "table.hierarchy{border-collapse:collapse;margin:1.5em 0}caption{text-align:left;font-weight:bold}"
                     "th{color:#888;font-weight:normal;padding-right:.6em;vertical-align:top}"
                     ".region{border:1px solid #555;border-radius:.25em;padding:.05em .2em}.free{color:#aaa}"
                     "</style></head><body>\n<h1>" +
                     html_escape(title) + "</h1>\n";
  if (!intro.empty()) page += "<p>" + html_escape(intro) + "</p>\n";
  for (const auto& t : texts) page += span_hierarchy_html(t, scale);
  page += "</body></html>\n";
  detail::write_file_atomically(path, "write_span_hierarchy_html", [&](auto&& write) {
    write(std::as_bytes(std::span<const char>(page.data(), page.size())));
  });
}

}  // namespace metagrad::io
