// SPDX-License-Identifier: MIT
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "metagrad/core/creation.hpp"
#include "metagrad/io/png.hpp"
#include "test_util.hpp"

// The reader, only to check the files round-trip; compiled static into this test alone.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

using namespace metagrad;

namespace {
std::uint32_t big_endian(const std::vector<std::uint8_t>& b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) | (std::uint32_t{b[at + 2]} << 8) | b[at + 3];
}
}  // namespace

TEST_SUITE("io.png") {
  TEST_CASE("io.png: a written file has the PNG signature, the IHDR dims and round-trips its pixels") {
    io::Image img(5, 3, 3);
    for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<std::uint8_t>(i * 17);
    const auto path = std::filesystem::temp_directory_path() / "metagrad-png-test.png";
    io::write_png(path, img);
    std::ifstream in(path, std::ios::binary);
    const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
    REQUIRE(bytes.size() > 33);
    const std::vector<std::uint8_t> signature{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    CHECK(std::equal(signature.begin(), signature.end(), bytes.begin()));
    CHECK(big_endian(bytes, 8) == 13);  // IHDR length
    CHECK(std::string(bytes.begin() + 12, bytes.begin() + 16) == "IHDR");
    CHECK(big_endian(bytes, 16) == 5);  // width
    CHECK(big_endian(bytes, 20) == 3);  // height
    CHECK(bytes[24] == 8);              // bit depth
    CHECK(bytes[25] == 2);              // colour type: RGB
    CHECK(std::string(bytes.end() - 8, bytes.end() - 4) == "IEND");
    int w = 0, h = 0, c = 0;
    stbi_uc* decoded = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &c, 0);
    REQUIRE(decoded != nullptr);
    CHECK((w == 5 && h == 3 && c == 3));
    CHECK(std::equal(img.pixels.begin(), img.pixels.end(), decoded));
    stbi_image_free(decoded);
    // No temporary file is left beside it.
    int leftovers = 0;
    for (const auto& e : std::filesystem::directory_iterator(path.parent_path()))
      leftovers += e.path().filename().string().starts_with("metagrad-png-test.png.tmp");
    CHECK(leftovers == 0);
    std::filesystem::remove(path);
  }

  TEST_CASE("io.png: heatmaps are white at 0, red at +limit, blue at −limit; grids and upscaling") {
    const auto heat = io::heatmap_image(tensor<double>({{0.0, 2.0, -2.0, 1.0}}));
    auto rgb = [&](int x) { return std::vector<int>{heat.at(x, 0)[0], heat.at(x, 0)[1], heat.at(x, 0)[2]}; };
    CHECK(rgb(0) == std::vector<int>{255, 255, 255});
    CHECK(rgb(1) == std::vector<int>{255, 0, 0});
    CHECK(rgb(2) == std::vector<int>{0, 0, 255});
    CHECK(rgb(3) == std::vector<int>{255, 128, 128});
    const auto grey = io::grey_image(tensor<float>({{0.f, 0.5f}, {1.f, 2.f}}), 0.0, 1.0);
    CHECK((grey.at(0, 0)[0] == 0 && grey.at(1, 0)[0] == 128 && grey.at(0, 1)[0] == 255 && grey.at(1, 1)[0] == 255));
    const auto big = io::upscale(grey, 3);
    CHECK((big.width == 6 && big.height == 6 && big.at(5, 5)[1] == 255 && big.at(2, 2)[0] == 0));
    const auto grid = io::image_grid({grey, grey, grey}, 2, 1);
    CHECK((grid.width == 1 + 2 * 3 && grid.height == 1 + 2 * 3));
    CHECK(grid.at(0, 0)[0] == 255);  // padding
    CHECK(grid.at(5, 5)[0] == 255);  // the empty fourth cell stays background
    CHECK(io::encode_png(grid).size() > 8);
  }

  TEST_CASE("io.png: bad input") {
    METAGRAD_CHECK_ERROR(io::encode_png(io::Image{}), "encode_png", "0x0");
    METAGRAD_CHECK_ERROR(io::heatmap_image(zeros<float>(Shape{2, 2, 2})), "heatmap_image", "[2, 2, 2]");
    METAGRAD_CHECK_ERROR(io::write_png("/nonexistent-dir/x.png", io::Image(1, 1, 3)), "write_png", "/nonexistent-dir");
    METAGRAD_CHECK_ERROR(io::image_grid({io::Image(1, 1, 3), io::Image(2, 1, 3)}, 2), "image_grid", "2x1x3");
  }
}
