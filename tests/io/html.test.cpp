// SPDX-License-Identifier: MIT
#include <filesystem>
#include <fstream>
#include <iterator>

#include "metagrad/io/html.hpp"
#include "test_util.hpp"

using namespace metagrad;

TEST_SUITE("io.html") {
  TEST_CASE("io.html: words are escaped and shaded by sign and magnitude") {
    const io::TokenLine line{{"free", "<money>", "now"}, {2.0, -1.0, 0.0}, "spam & co"};
    const auto html = io::token_line_html(line);
    CHECK(html.find("&lt;money&gt;") != std::string::npos);
    CHECK(html.find("<money>") == std::string::npos);
    CHECK(html.find("spam &amp; co") != std::string::npos);
    CHECK(html.find("rgba(220,40,40,0.800)\" title=\"2\">free") != std::string::npos);   // the max: full red
    CHECK(html.find("rgba(40,40,220,0.400)\" title=\"-1\">&lt;money") != std::string::npos);  // half blue
    CHECK(html.find("0.000)\" title=\"0\">now") != std::string::npos);                     // clear
    // A fixed scale shades across lines alike.
    CHECK(io::token_line_html(line, 4.0).find("rgba(220,40,40,0.400)") != std::string::npos);
  }

  TEST_CASE("io.html: a page is written whole") {
    const std::vector<io::TokenLine> lines{{{"a", "b"}, {1.0, 0.5}, ""}, {{"c"}, {-3.0}, "second"}};
    const auto path = std::filesystem::temp_directory_path() / "metagrad-html-test.html";
    io::write_token_html(path, "Title <1>", lines);
    std::ifstream in(path);
    const std::string text{std::istreambuf_iterator<char>(in), {}};
    CHECK(text.starts_with("<!DOCTYPE html>"));
    CHECK(text.find("<title>Title &lt;1&gt;</title>") != std::string::npos);
    CHECK(text.find(">second</span>") != std::string::npos);
    CHECK(text.ends_with("</html>\n"));
    std::filesystem::remove(path);
  }

  TEST_CASE("io.html: bad input") {
    METAGRAD_CHECK_ERROR(io::token_line_html({{"a", "b"}, {1.0}, ""}), "token_line_html", "2 tokens", "1 scores");
    METAGRAD_CHECK_ERROR(io::token_line_html({{"a"}, {NAN}, ""}), "token_line_html", "nan");
  }
}

TEST_SUITE("io.html") {
  TEST_CASE("io.html: a span hierarchy frames each region's run of tokens, shaded by the region's score") {
    const io::SpanHierarchy h{{"buy", "cheap", "<pills>", "now"},
                              {{0, -1, -1, 1}, {0, 0, 0, -1}},
                              {{2.0, -1.0}, {4.0}},
                              "spam"};
    const auto html = io::span_hierarchy_html(h);
    CHECK(html.find("<caption>spam</caption>") != std::string::npos);
    CHECK(html.find("rgba(220,40,40,0.800)\" title=\"2\">buy</span>") != std::string::npos);  // the level's max
    CHECK(html.find("<span class=\"free\">cheap &lt;pills&gt;</span>") != std::string::npos);
    CHECK(html.find("rgba(40,40,220,0.400)\" title=\"-1\">now</span>") != std::string::npos);
    CHECK(html.find("rgba(220,40,40,0.800)\" title=\"4\">buy cheap &lt;pills&gt;</span>") != std::string::npos);
    const auto dir = std::filesystem::temp_directory_path() / "metagrad_html_span_test";
    std::filesystem::create_directories(dir);
    io::write_span_hierarchy_html(dir / "h.html", "ACD", std::vector<io::SpanHierarchy>{h}, "intro & more");
    std::ifstream in(dir / "h.html");
    const std::string page{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    CHECK(page.find("<p>intro &amp; more</p>") != std::string::npos);
    CHECK(page.find("title=\"4\">buy cheap") != std::string::npos);
    std::filesystem::remove_all(dir);
  }

  TEST_CASE("io.html: a span hierarchy with mismatched sizes or unknown regions is an error") {
    METAGRAD_CHECK_ERROR(io::span_hierarchy_html({{"a", "b"}, {{0}}, {{1.0}}, ""}), "span_hierarchy_html", "1 tokens",
                         "has 2");
    METAGRAD_CHECK_ERROR(io::span_hierarchy_html({{"a"}, {{1}}, {{1.0}}, ""}), "span_hierarchy_html", "region 1");
    METAGRAD_CHECK_ERROR(io::span_hierarchy_html({{"a"}, {{0}}, {}, ""}), "span_hierarchy_html", "1 levels of regions");
  }
}
