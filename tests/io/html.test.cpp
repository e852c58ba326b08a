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
