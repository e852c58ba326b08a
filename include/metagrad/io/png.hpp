// SPDX-License-Identifier: MIT
// PNG files of images (heatmaps, grids), encoded by stb_image_write (Debian: libstb-dev) and
// written atomically (temporary file, then rename).
//
// Header-only without ODR trouble: stb is compiled here with STB_IMAGE_WRITE_STATIC, so each
// translation unit gets its own internal-linkage copy and no program ever sees two external
// definitions; the two functions that call into stb sit in an unnamed namespace for the same
// reason (an inline function with external linkage must not call internal-linkage functions).
// A program that compiles stb_image_write itself defines METAGRAD_EXTERNAL_STB_IMAGE_WRITE, and
// then this header only includes stb's declarations.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "metagrad/io/detail/atomic_file.hpp"
#include "metagrad/io/image.hpp"

#ifdef METAGRAD_EXTERNAL_STB_IMAGE_WRITE
#include <stb/stb_image_write.h>
#else
#ifdef INCLUDE_STB_IMAGE_WRITE_H
#error "metagrad/io/png.hpp must come before <stb/stb_image_write.h>, or define METAGRAD_EXTERNAL_STB_IMAGE_WRITE"
#endif
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#endif

namespace metagrad::io {
namespace {

/// The PNG file bytes of `img`.
inline std::vector<std::uint8_t> encode_png(const Image& img) {
  check(img.width > 0 && img.height > 0 && (img.channels >= 1 && img.channels <= 4) &&
            img.pixels.size() == static_cast<std::size_t>(img.width) * img.height * img.channels,
        "encode_png", "image ", img.width, "x", img.height, "x", img.channels, " with ", img.pixels.size(),
        " bytes is not a valid 8-bit image");
  std::vector<std::uint8_t> bytes;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<std::uint8_t>*>(context);
    const auto* p = static_cast<const std::uint8_t*>(data);
    out->insert(out->end(), p, p + size);
  };
  const int ok = stbi_write_png_to_func(append, &bytes, img.width, img.height, img.channels, img.pixels.data(),
                                        img.width * img.channels);
  check(ok != 0, "encode_png", "stb_image_write failed on a ", img.width, "x", img.height, " image");
  return bytes;
}

/// Writes `img` as a PNG file at `path`, atomically.
inline void write_png(const std::filesystem::path& path, const Image& img) {
  const auto bytes = encode_png(img);
  detail::write_file_atomically(path, "write_png", [&](auto&& write) {
    write(std::as_bytes(std::span<const std::uint8_t>(bytes)));
  });
}

}  // namespace
}  // namespace metagrad::io
