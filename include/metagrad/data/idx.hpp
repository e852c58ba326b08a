// SPDX-License-Identifier: MIT
// The IDX format of the MNIST site (and of Fashion-MNIST), plain or gzipped: a 4-byte magic
// (0, 0, element type, rank), `rank` big-endian uint32 extents, then the elements big-endian,
// row-major. The reader validates the magic, the element type, the rank and that the extents
// describe exactly the bytes the file holds before it converts a single element, so a truncated,
// corrupt or hostile file gets a metagrad::Error naming the file and the problem, never UB.
#pragma once
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <zlib.h>

#include "metagrad/core/error.hpp"
#include "metagrad/core/shape.hpp"
#include "metagrad/core/tensor.hpp"

namespace metagrad::data {

/// IDX element types (the third magic byte).
enum class IdxType : std::uint8_t { u8 = 0x08, i8 = 0x09, i16 = 0x0B, i32 = 0x0C, f32 = 0x0D, f64 = 0x0E };

inline const char* idx_type_name(IdxType t) {
  switch (t) {
    case IdxType::u8: return "uint8";
    case IdxType::i8: return "int8";
    case IdxType::i16: return "int16";
    case IdxType::i32: return "int32";
    case IdxType::f32: return "float32";
    case IdxType::f64: return "float64";
  }
  return "unknown";
}

/// Decompressed size above which a file is refused (a hostile gzip could otherwise inflate without
/// bound); far above any IDX data set in use (Fashion-MNIST train images: 47 MB).
inline constexpr std::size_t kIdxMaxBytes = std::size_t{1} << 31;

namespace detail {

inline std::size_t idx_element_size(std::uint8_t code, bool& known) {
  known = true;
  switch (code) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: known = false; return 0;
  }
}

/// The whole (decompressed) content of a file; zlib reads a non-gzip file through unchanged.
inline std::vector<unsigned char> read_maybe_gzipped(const std::filesystem::path& file, const char* op,
                                                     std::size_t max_bytes = kIdxMaxBytes) {
  std::error_code ec;
  check(std::filesystem::is_regular_file(file, ec), op, file.string(), ": no such file");
  gzFile gz = gzopen(file.string().c_str(), "rb");
  check(gz != nullptr, op, file.string(), ": cannot open (", std::strerror(errno), ")");
  gzbuffer(gz, 1u << 17);
  std::vector<unsigned char> bytes;
  constexpr unsigned kChunk = 1u << 20;
  for (;;) {
    if (bytes.size() > max_bytes) {
      gzclose_r(gz);
      fail(op, file.string(), ": more than ", max_bytes, " bytes after decompression; refusing to read it");
    }
    const std::size_t old = bytes.size();
    bytes.resize(old + kChunk);
    const int got = gzread(gz, bytes.data() + old, kChunk);
    if (got < 0) {
      int code = 0;
      const std::string why = gzerror(gz, &code);
      gzclose_r(gz);
      fail(op, file.string(), ": corrupt or truncated gzip data (", why, ")");
    }
    bytes.resize(old + static_cast<std::size_t>(got));
    if (got == 0) break;
  }
  // A gzip stream cut short reads as a clean end of file on some zlib versions; gzerror says otherwise.
  int code = Z_OK;
  const std::string why = gzerror(gz, &code);
  gzclose_r(gz);
  check(code == Z_OK || code == Z_STREAM_END, op, file.string(), ": corrupt or truncated gzip data (", why, ")");
  return bytes;
}

inline std::uint64_t load_be(const unsigned char* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace detail

/// The validated header of an IDX file: element type and extents.
struct IdxHeader {
  IdxType type{};
  std::vector<std::int64_t> dims;
  std::size_t header_bytes = 0;
  std::size_t element_bytes = 0;
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : dims) n *= d;
    return n;
  }
};

/// Validates the header of `bytes` (the whole file) against its size; throws naming `file` otherwise.
inline IdxHeader parse_idx_header(const std::vector<unsigned char>& bytes, const std::string& file,
                                  const char* op = "read_idx") {
  check(bytes.size() >= 4, op, file, ": ", bytes.size(), " bytes is too short for an IDX header (truncated?)");
  check(bytes[0] == 0 && bytes[1] == 0, op, file, ": bad magic (first two bytes must be 0, got ", int(bytes[0]),
        " and ", int(bytes[1]), "); not an IDX file");
  IdxHeader h;
  bool known = false;
  h.element_bytes = detail::idx_element_size(bytes[2], known);
  check(known, op, file, ": unknown IDX element type 0x", std::hex, int(bytes[2]),
        " (known: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)");
  h.type = static_cast<IdxType>(bytes[2]);
  const int rank = bytes[3];
  check(rank >= 1 && rank <= kMaxRank, op, file, ": IDX rank ", rank, " is outside 1..", kMaxRank);
  h.header_bytes = 4 + 4 * static_cast<std::size_t>(rank);
  check(bytes.size() >= h.header_bytes, op, file, ": truncated header (rank ", rank, " needs ", h.header_bytes,
        " bytes, the file has ", bytes.size(), ")");
  const std::size_t payload = bytes.size() - h.header_bytes;
  // Multiply the extents with an overflow check, so a hostile header cannot wrap around to a small,
  // "valid" size (an extent of 0 makes the product 0 whatever the others are).
  bool has_zero = false;
  for (int d = 0; d < rank; ++d) {
    h.dims.push_back(static_cast<std::int64_t>(detail::load_be(bytes.data() + 4 + 4 * d, 4)));
    has_zero = has_zero || h.dims.back() == 0;
  }
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t need = has_zero ? 0 : h.element_bytes;
  bool overflow = false;
  for (auto extent : h.dims) {
    const auto e = static_cast<std::uint64_t>(extent);
    if (e != 0 && need > kMax / e) overflow = true;
    need = overflow ? kMax : need * e;
  }
  const Shape shape(h.dims);
  check(!overflow, op, file, ": header declares extents ", shape, " of ", idx_type_name(h.type),
        ", more than 2^64 bytes, but the file has ", payload, " bytes after the header (truncated or corrupt)");
  check(need == payload, op, file, ": header declares extents ", shape, " of ", idx_type_name(h.type), " = ", need,
        " bytes, but the file has ", payload, " bytes after the header (",
        need > payload ? "truncated" : "trailing bytes", ")");
  return h;
}

namespace detail {

template <Element T>
void convert_idx(const unsigned char* p, const IdxHeader& h, T* out, const std::string& file, const char* op) {
  const std::int64_t n = h.numel();
  const std::size_t es = h.element_bytes;
  // One loop per element type, so the common uint8 case is a plain widening copy.
  auto each = [&](auto decode) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = decode(p + static_cast<std::size_t>(i) * es, i);
  };
  auto finite = [&](double v, std::int64_t i) {
    check(std::isfinite(v), op, file, ": element ", i, " is ", v, "; data must be finite");
    return static_cast<T>(v);
  };
  switch (h.type) {
    case IdxType::u8: each([](const unsigned char* q, std::int64_t) { return static_cast<T>(*q); }); break;
    case IdxType::i8:
      each([](const unsigned char* q, std::int64_t) { return static_cast<T>(static_cast<std::int8_t>(*q)); });
      break;
    case IdxType::i16:
      each([](const unsigned char* q, std::int64_t) { return static_cast<T>(static_cast<std::int16_t>(load_be(q, 2))); });
      break;
    case IdxType::i32:
      each([](const unsigned char* q, std::int64_t) { return static_cast<T>(static_cast<std::int32_t>(load_be(q, 4))); });
      break;
    case IdxType::f32:
      each([&](const unsigned char* q, std::int64_t i) {
        return finite(std::bit_cast<float>(static_cast<std::uint32_t>(load_be(q, 4))), i);
      });
      break;
    case IdxType::f64:
      each([&](const unsigned char* q, std::int64_t i) { return finite(std::bit_cast<double>(load_be(q, 8)), i); });
      break;
  }
}

}  // namespace detail

/// Reads an IDX file (gzipped or not) into a tensor of its extents. Integer element types read into
/// any element type; float32/float64 only into float or double.
template <Element T>
Tensor<T> read_idx(const std::filesystem::path& file) {
  const std::string name = file.string();
  const auto bytes = detail::read_maybe_gzipped(file, "read_idx");
  const IdxHeader h = parse_idx_header(bytes, name);
  check(Floating<T> || (h.type != IdxType::f32 && h.type != IdxType::f64), "read_idx", name, ": holds ",
        idx_type_name(h.type), " data, which cannot be read into an integer tensor");
  auto out = Tensor<T>::empty(Shape(h.dims));
  detail::convert_idx<T>(bytes.data() + h.header_bytes, h, out.fresh_data(), name, "read_idx");
  return out;
}

/// Writes `t` as IDX with element type `type`, gzipped when `file` ends in ".gz". Every value must be
/// representable in `type` (integers in range, finite floats).
template <Element T>
void write_idx(const std::filesystem::path& file, const Tensor<T>& t, IdxType type) {
  const std::string name = file.string();
  check(t.dim() >= 1, "write_idx", name, ": IDX needs rank >= 1, got shape ", t.shape());
  bool known = false;
  detail::idx_element_size(static_cast<std::uint8_t>(type), known);
  check(known, "write_idx", name, ": unknown IDX element type ", int(type));
  std::vector<unsigned char> bytes{0, 0, static_cast<unsigned char>(type), static_cast<unsigned char>(t.dim())};
  auto put = [&bytes](std::uint64_t v, std::size_t n) {
    for (std::size_t i = n; i-- > 0;) bytes.push_back(static_cast<unsigned char>(v >> (8 * i)));
  };
  for (int d = 0; d < t.dim(); ++d) {
    check(t.size(d) <= std::int64_t{0xffffffff}, "write_idx", name, ": extent ", t.size(d), " does not fit IDX's uint32");
    put(static_cast<std::uint64_t>(t.size(d)), 4);
  }
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const double v = static_cast<double>(t.data()[i]);
    auto integer = [&](double lo, double hi) {
      check(v == std::floor(v) && v >= lo && v <= hi, "write_idx", name, ": value ", v, " at ", i,
            " is not representable as ", idx_type_name(type));
      return static_cast<std::uint64_t>(static_cast<std::int64_t>(v));
    };
    switch (type) {
      case IdxType::u8: put(integer(0, 255), 1); break;
      case IdxType::i8: put(integer(-128, 127), 1); break;
      case IdxType::i16: put(integer(-32768, 32767), 2); break;
      case IdxType::i32: put(integer(-2147483648.0, 2147483647.0), 4); break;
      case IdxType::f32:
        check(std::isfinite(v), "write_idx", name, ": value ", v, " at ", i, " is not finite");
        put(std::bit_cast<std::uint32_t>(static_cast<float>(v)), 4);
        break;
      case IdxType::f64:
        check(std::isfinite(v), "write_idx", name, ": value ", v, " at ", i, " is not finite");
        put(std::bit_cast<std::uint64_t>(v), 8);
        break;
    }
  }
  check(bytes.size() < (std::size_t{1} << 31), "write_idx", name, ": ", bytes.size(), " bytes is too large");
  const bool gzip = file.extension() == ".gz";
  gzFile gz = gzopen(name.c_str(), gzip ? "wb9" : "wbT");  // "T": write without compression
  check(gz != nullptr, "write_idx", name, ": cannot open for writing (", std::strerror(errno), ")");
  const int wrote = bytes.empty() ? 0 : gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size()));
  const int closed = gzclose_w(gz);
  check(wrote == static_cast<int>(bytes.size()) && closed == Z_OK, "write_idx", name, ": write failed");
}

}  // namespace metagrad::data
