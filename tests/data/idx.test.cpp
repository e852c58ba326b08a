// SPDX-License-Identifier: MIT
// The IDX reader and writer: round trips of every element type, plain and gzipped, and rejection of
// truncated, corrupt and hostile files (including a loop of random mutations that must either load
// or throw metagrad::Error, never crash).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include <zlib.h>

#include "metagrad/core/random.hpp"
#include "metagrad/data/idx.hpp"
#include "data/files.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using metagrad::testing::fresh_dir;
namespace md = metagrad::data;
using metagrad::Shape;
using metagrad::Tensor;
using Bytes = std::vector<unsigned char>;

namespace {

Bytes read_bytes(const fs::path& f) {
  std::ifstream in(f, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& f, const Bytes& b) {
  std::ofstream(f, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void write_gz(const fs::path& f, const Bytes& b) {
  gzFile gz = gzopen(f.string().c_str(), "wb");
  REQUIRE(gz != nullptr);
  if (!b.empty()) gzwrite(gz, b.data(), static_cast<unsigned>(b.size()));
  gzclose(gz);
}

/// A hand-built IDX header: magic (0, 0, type, rank) and big-endian extents.
Bytes header(unsigned char type, std::vector<std::uint32_t> dims) {
  Bytes b{0, 0, type, static_cast<unsigned char>(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
  return b;
}

}  // namespace

TEST_SUITE("data.idx") {
  TEST_CASE("data.read_idx: hand-written uint8 file, big-endian extents, row-major") {
    const fs::path dir = fresh_dir("idx-hand");
    Bytes b = header(0x08, {2, 3});
    for (unsigned char v : {0, 1, 2, 253, 254, 255}) b.push_back(v);
    write_bytes(dir / "a.idx", b);
    const auto t = md::read_idx<float>(dir / "a.idx");
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.to_vector() == std::vector<float>{0, 1, 2, 253, 254, 255});
    write_gz(dir / "a.idx.gz", b);
    CHECK(md::read_idx<std::int64_t>(dir / "a.idx.gz").to_vector() == std::vector<std::int64_t>{0, 1, 2, 253, 254, 255});
    // int16 -2 and float32 1.5 big-endian.
    Bytes c = header(0x0B, {1});
    c.insert(c.end(), {0xff, 0xfe});
    write_bytes(dir / "c.idx", c);
    CHECK(md::read_idx<double>(dir / "c.idx").item() == -2.0);
    Bytes f = header(0x0D, {1});
    f.insert(f.end(), {0x3f, 0xc0, 0x00, 0x00});
    write_bytes(dir / "f.idx", f);
    CHECK(md::read_idx<float>(dir / "f.idx").item() == 1.5f);
    fs::remove_all(dir);
  }

  TEST_CASE("data.write_idx: every element type round-trips, plain and gzipped") {
    const fs::path dir = fresh_dir("idx-roundtrip");
    auto t = Tensor<double>::empty(Shape{2, 3, 4});
    for (int i = 0; i < 24; ++i) t.fresh_data()[i] = i * 5 % 128;  // fits every integer type
    for (auto type : {md::IdxType::u8, md::IdxType::i8, md::IdxType::i16, md::IdxType::i32, md::IdxType::f32,
                      md::IdxType::f64})
      for (const char* name : {"t.idx", "t.idx.gz"}) {
        CAPTURE(md::idx_type_name(type));
        CAPTURE(name);
        md::write_idx(dir / name, t, type);
        const auto back = md::read_idx<double>(dir / name);
        CHECK(back.shape() == t.shape());
        CHECK(back.to_vector() == t.to_vector());
      }
    // Negative values and the extremes of each integer type.
    auto ext = metagrad::IndexTensor::empty(Shape{4});
    std::int64_t* e = ext.fresh_data();
    e[0] = -2147483648LL, e[1] = 2147483647LL, e[2] = -1, e[3] = 0;
    md::write_idx(dir / "e.idx.gz", ext, md::IdxType::i32);
    CHECK(md::read_idx<std::int64_t>(dir / "e.idx.gz").to_vector() == ext.to_vector());
    // The gzipped file really is gzip, the plain one really is not.
    CHECK(read_bytes(dir / "e.idx.gz").at(0) == 0x1f);
    md::write_idx(dir / "e.idx", ext, md::IdxType::i32);
    CHECK(read_bytes(dir / "e.idx") == [&] {
      Bytes b = header(0x0C, {4});
      for (std::uint32_t v : {0x80000000u, 0x7fffffffu, 0xffffffffu, 0u})
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
      return b;
    }());
    fs::remove_all(dir);
  }

  TEST_CASE("data.write_idx: values the element type cannot hold are rejected") {
    const fs::path dir = fresh_dir("idx-write-bad");
    auto t = Tensor<float>::empty(Shape{2});
    t.fresh_data()[0] = 1, t.fresh_data()[1] = 256;
    METAGRAD_CHECK_ERROR(md::write_idx(dir / "x", t, md::IdxType::u8), "write_idx", "value 256", "uint8");
    t.fresh_data()[1] = 0.5f;
    METAGRAD_CHECK_ERROR(md::write_idx(dir / "x", t, md::IdxType::i16), "value 0.5", "int16");
    t.fresh_data()[1] = std::numeric_limits<float>::quiet_NaN();
    METAGRAD_CHECK_ERROR(md::write_idx(dir / "x", t, md::IdxType::f32), "not finite");
    fs::remove_all(dir);
  }

  TEST_CASE("data.read_idx: truncated, corrupt and hostile files name the file and the problem") {
    const fs::path dir = fresh_dir("idx-bad");
    const auto f = dir / "bad.idx";
    auto payload = [](Bytes b, std::size_t n) {
      b.resize(b.size() + n, 7);
      return b;
    };
    write_bytes(f, {0, 0});
    METAGRAD_CHECK_ERROR(md::read_idx<float>(f), "read_idx", "bad.idx", "too short");
    write_bytes(f, payload({1, 0, 8, 1, 0, 0, 0, 1}, 1));
    METAGRAD_CHECK_ERROR(md::read_idx<float>(f), "bad.idx", "bad magic");
    write_bytes(f, payload(header(0x07, {1}), 1));
    METAGRAD_CHECK_ERROR(md::read_idx<float>(f), "bad.idx", "unknown IDX element type");
    write_bytes(f, {0, 0, 8, 0});
    METAGRAD_CHECK_ERROR(md::read_idx<float>(f), "bad.idx", "rank 0");
    write_bytes(f, payload(header(0x08, {1, 1, 1, 1, 1, 1, 1, 1, 1}), 1));
    METAGRAD_CHECK_ERROR(md::read_idx<float>(f), "bad.idx", "rank 9");
    write_bytes(f, {0, 0, 8, 2, 0, 0, 0, 3});
    METAGRAD_CHECK_ERROR(md::read_idx<float>(f), "bad.idx", "truncated header");
    write_bytes(f, payload(header(0x08, {10, 28, 28}), 7839));
    METAGRAD_CHECK_ERROR(md::read_idx<float>(f), "bad.idx", "[10, 28, 28]", "7840 bytes", "7839", "truncated");
    write_bytes(f, payload(header(0x0C, {3}), 13));
    METAGRAD_CHECK_ERROR(md::read_idx<float>(f), "bad.idx", "int32", "12 bytes", "trailing bytes");
    // Extents whose product overflows 64 bits must not wrap around to a small, "valid" size.
    write_bytes(f, payload(header(0x0E, {0xffffffffu, 0xffffffffu, 0xffffffffu, 0x10u}), 8));
    METAGRAD_CHECK_ERROR(md::read_idx<float>(f), "bad.idx", "[4294967295, 4294967295, 4294967295, 16]", "truncated");
    Bytes nan = header(0x0D, {1});
    nan.insert(nan.end(), {0x7f, 0xc0, 0, 0});
    write_bytes(f, nan);
    METAGRAD_CHECK_ERROR(md::read_idx<float>(f), "bad.idx", "element 0 is nan", "finite");
    Bytes fl = header(0x0D, {1});
    fl.insert(fl.end(), {0x3f, 0xc0, 0, 0});
    write_bytes(f, fl);
    METAGRAD_CHECK_ERROR(md::read_idx<std::int64_t>(f), "bad.idx", "float32", "integer tensor");
    METAGRAD_CHECK_ERROR(md::read_idx<float>(dir / "absent.idx"), "absent.idx", "no such file");
    fs::remove_all(dir);
  }

  TEST_CASE("data.read_idx: a cut-short or damaged gzip stream is an error, not short data") {
    const fs::path dir = fresh_dir("idx-gz-bad");
    auto t = Tensor<float>::empty(Shape{64, 64});
    for (int i = 0; i < 64 * 64; ++i) t.fresh_data()[i] = static_cast<float>((i * 37) % 251);
    md::write_idx(dir / "ok.gz", t, md::IdxType::u8);
    const Bytes gz = read_bytes(dir / "ok.gz");
    write_bytes(dir / "cut.gz", Bytes(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2)));
    METAGRAD_CHECK_ERROR(md::read_idx<float>(dir / "cut.gz"), "read_idx", "cut.gz");
    Bytes crc = gz;
    crc[crc.size() - 6] ^= 0xff;  // the CRC-32 in the trailer
    write_bytes(dir / "crc.gz", crc);
    METAGRAD_CHECK_ERROR(md::read_idx<float>(dir / "crc.gz"), "crc.gz", "corrupt or truncated gzip");
    fs::remove_all(dir);
  }

  TEST_CASE("data.read_idx: random mutations either load or throw metagrad::Error") {
    const fs::path dir = fresh_dir("idx-fuzz");
    auto t = Tensor<float>::empty(Shape{5, 7, 3});
    for (int i = 0; i < 105; ++i) t.fresh_data()[i] = static_cast<float>(i * 2);
    metagrad::Generator gen(42);
    int loaded = 0, rejected = 0;
    for (const char* name : {"seed.idx", "seed.idx.gz"})
      for (auto type : {md::IdxType::u8, md::IdxType::i32, md::IdxType::f64}) {
        md::write_idx(dir / name, t, type);
        const Bytes good = read_bytes(dir / name);
        for (int trial = 0; trial < 150; ++trial) {
          Bytes b = good;
          const auto kind = gen.below(3);
          if (kind == 0) {  // flip a few bytes, often in the header
            for (auto k = gen.below(4) + 1; k-- > 0;) {
              const auto at = gen.below(2) == 0 ? gen.below(std::min<std::uint64_t>(b.size(), 24)) : gen.below(b.size());
              b[at] = static_cast<unsigned char>(gen.below(256));
            }
          } else if (kind == 1) {  // truncate
            b.resize(gen.below(b.size()));
          } else {  // append garbage
            for (auto k = gen.below(9) + 1; k-- > 0;) b.push_back(static_cast<unsigned char>(gen.below(256)));
          }
          write_bytes(dir / "m", b);
          try {
            const auto r = md::read_idx<double>(dir / "m");
            CHECK(r.dim() >= 1);
            ++loaded;
          } catch (const metagrad::Error& e) {
            CHECK(std::string(e.what()).find((dir / "m").string()) != std::string::npos);
            ++rejected;
          }
        }
      }
    MESSAGE("mutations loaded: ", loaded, ", rejected: ", rejected);
    CHECK(rejected > 0);
    fs::remove_all(dir);
  }
}
