// SPDX-License-Identifier: MIT
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "metagrad/core/creation.hpp"
#include "metagrad/io/safetensors.hpp"
#include "metagrad/ops/view.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::io::Checkpoint;
using Bytes = std::vector<unsigned char>;
namespace fs = std::filesystem;

namespace {
/// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("metagrad-safetensors-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path operator/(const std::string& name) const { return path / name; }
};

Bytes read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const fs::path& p, const Bytes& b) {
  fs::remove(p);  // a fresh file: truncating one in place makes ext4 flush it on close (slow)
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
/// A file by hand: little-endian length, header text, then data.
Bytes file_bytes(const std::string& header, const Bytes& data, std::uint64_t length = UINT64_MAX) {
  if (length == UINT64_MAX) length = header.size();
  Bytes out;
  for (int k = 0; k < 8; ++k) out.push_back(static_cast<unsigned char>(length >> (8 * k)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}
template <class T>
Bytes le_bytes(std::initializer_list<T> values) {
  Bytes out;
  for (T v : values) {
    unsigned char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.insert(out.end(), b, b + sizeof(T));
  }
  return out;
}
template <Element T>
bool same_tensor(const io::AnyTensor& a, const Tensor<T>& b) {
  if (!std::holds_alternative<Tensor<T>>(a)) return false;
  const auto& x = std::get<Tensor<T>>(a);
  return x.shape() == b.shape() && std::memcmp(x.data(), b.data(), sizeof(T) * static_cast<std::size_t>(b.numel())) == 0;
}
/// Loads `bytes` written to a file and returns the error message ("" when it loads).
std::string load_error(const TempDir& dir, const Bytes& bytes) {
  const auto p = dir / "case.safetensors";
  write_bytes(p, bytes);
  try {
    (void)io::load_safetensors(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

#define CHECK_REJECTED(bytes, ...)                                                                   \
  do {                                                                                               \
    const std::string msg_ = load_error(dir, bytes);                                                 \
    CHECK_MESSAGE(!msg_.empty(), "accepted a bad file");                                             \
    for (const char* fragment_ : {"load_safetensors", "case.safetensors", __VA_ARGS__})              \
      CHECK_MESSAGE(msg_.find(fragment_) != std::string::npos, ("message: " + msg_ + " | lacks: " + fragment_)); \
  } while (0)

TEST_SUITE("io.safetensors") {
  TEST_CASE("io.safetensors: exact round trip of float, double and int64 tensors of odd shapes, with metadata") {
    TempDir dir;
    Generator gen(5);
    Checkpoint c;
    const auto f = randn<float>(Shape{3, 5, 7}, gen);
    auto special = tensor<double>({0.0, -0.0, std::numeric_limits<double>::infinity(), std::nan(""),
                                   std::numeric_limits<double>::denorm_min(), 1e308, -1.0 / 3.0});
    const auto d = randn<double>(Shape{1, 13}, gen);
    const auto i = randint(-(std::int64_t{1} << 62), std::int64_t{1} << 62, Shape{2, 1, 3}, gen);
    const auto scalar = scalar_tensor<float>(2.5f);
    const auto empty = zeros<double>(Shape{0, 4});
    c.insert("layer.weight", f);
    c.insert("special", special);
    c.insert("d", d);
    c.insert("counts", i);
    c.insert("scalar", scalar);
    c.insert("empty", empty);
    c.metadata = {{"format", "pt"}, {"note", "ünïcode \"quoted\" \\ back"}, {"", "empty key"}};
    io::save_safetensors(dir / "a.safetensors", c);
    const auto r = io::load_safetensors(dir / "a.safetensors");
    CHECK(r.size() == 6);
    CHECK(r.metadata == c.metadata);
    CHECK(same_tensor(*r.find("layer.weight"), f));
    CHECK(same_tensor(*r.find("special"), special));  // NaN and -0.0 bit for bit
    CHECK(same_tensor(*r.find("d"), d));
    CHECK(same_tensor(*r.find("counts"), i));
    CHECK(same_tensor(*r.find("scalar"), scalar));
    CHECK(same_tensor(*r.find("empty"), empty));
    CHECK(r.get<float>("scalar").dim() == 0);
    METAGRAD_CHECK_ERROR(r.get<double>("layer.weight"), "Checkpoint", "'layer.weight' is F32, not F64");
    METAGRAD_CHECK_ERROR(r.named<double>(), "Checkpoint", "not F64");
    // Saving again over the file replaces it atomically and leaves no temporary behind.
    io::save_safetensors(dir / "a.safetensors", NamedTensors<float>{{"only", scalar}});
    CHECK(io::load_safetensors(dir / "a.safetensors").size() == 1);
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
  }

  TEST_CASE("io.safetensors: the bytes equal the reference implementation's for its own examples") {
    TempDir dir;
    // From safetensors' test_serialization: "attn.0", F32 [1, 2, 3] = 0..5.
    const auto values = from_vector<float>({0, 1, 2, 3, 4, 5}, Shape{1, 2, 3});
    io::save_safetensors(dir / "a", NamedTensors<float>{{"attn.0", values}});
    CHECK(read_bytes(dir / "a") ==
          file_bytes(R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})", le_bytes<float>({0, 1, 2, 3, 4, 5})));
    // test_serialization_forced_alignement: a shorter name, so the header is padded with 7 spaces to 72.
    io::save_safetensors(dir / "b", NamedTensors<float>{{"attn0", reshape(values, {1, 1, 2, 3})}});
    const Bytes b = read_bytes(dir / "b");
    CHECK(b == file_bytes(R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       )",
                          le_bytes<float>({0, 1, 2, 3, 4, 5})));
    CHECK(b[0] == 72);
    // test_empty: no tensors; with metadata {"framework": "pt"}.
    io::save_safetensors(dir / "c", NamedTensors<float>{});
    CHECK(read_bytes(dir / "c") == file_bytes("{}      ", {}));
    io::save_safetensors(dir / "d", NamedTensors<float>{}, {{"framework", "pt"}});
    CHECK(read_bytes(dir / "d") == file_bytes(R"({"__metadata__":{"framework":"pt"}}     )", {}));
  }

  TEST_CASE("io.safetensors: tensors are laid out by dtype (I64, F64, F32) and then by name") {
    TempDir dir;
    Checkpoint c;
    c.insert("b", tensor<float>({1.0f}));
    c.insert("a", tensor<float>({2.0f}));
    c.insert("z", tensor<double>({3.0}));
    c.insert("y", from_vector<std::int64_t>({4}));
    io::save_safetensors(dir / "m", c);
    const std::string header =
        R"({"y":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"z":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},)"
        R"("a":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},"b":{"dtype":"F32","shape":[1],"data_offsets":[20,24]}})";
    Bytes data = le_bytes<std::int64_t>({4});
    for (const Bytes& part : {le_bytes<double>({3.0}), le_bytes<float>({2.0f, 1.0f})}) data.insert(data.end(), part.begin(), part.end());
    CHECK(read_bytes(dir / "m") == file_bytes(header + std::string((8 - header.size() % 8) % 8, ' '), data));
    const auto r = io::load_safetensors(dir / "m");
    std::vector<std::string> names;
    for (const auto& [name, t] : r.entries()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"y", "z", "a", "b"});  // buffer order
  }

  TEST_CASE("io.safetensors: a hand-built file with keys in any order and no padding loads") {
    TempDir dir;
    const std::string header =
        R"({"w":{"shape":[2],"data_offsets":[8,16],"dtype":"F32"},"__metadata__":{"k":"v"},"i":{"data_offsets":[0,8],"dtype":"I64","shape":[]}})";
    Bytes data = le_bytes<std::int64_t>({-7});
    const Bytes w = le_bytes<float>({1.5f, -2.0f});
    data.insert(data.end(), w.begin(), w.end());
    CHECK(load_error(dir, file_bytes(header, data)).empty());
    const auto r = io::load_safetensors(dir / "case.safetensors");
    CHECK(r.get<std::int64_t>("i").item() == -7);
    CHECK(r.get<float>("w").to_vector() == std::vector<float>{1.5f, -2.0f});
    CHECK(r.metadata.at("k") == "v");
  }

  TEST_CASE("io.safetensors: malformed files are rejected with errors naming the file, the tensor and the problem") {
    TempDir dir;
    const Bytes four = le_bytes<float>({1.0f});
    auto one = [](const std::string& entry) { return R"({"t":)" + entry + "}"; };
    const std::string good = one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})");
    REQUIRE(load_error(dir, file_bytes(good, four)).empty());

    const Bytes tiny{1, 2, 3};
    CHECK_REJECTED(tiny, "3 bytes, fewer than the 8");
    CHECK_REJECTED(file_bytes(good, four, good.size() + 5), "header length", "exceeds");
    CHECK_REJECTED(file_bytes(good, four, UINT64_MAX - 3), "header length", "exceeds");
    Bytes truncated = file_bytes(good, four);
    truncated.resize(truncated.size() - 2);
    CHECK_REJECTED(truncated, "tensor 't'", "run past the 2-byte buffer");
    Bytes flipped = file_bytes(good, four);
    flipped[8 + good.find("F32") + 1] ^= 0x02;  // a bit flip inside the JSON: "F32" becomes "F12"
    CHECK_REJECTED(flipped, "tensor 't'", "unsupported dtype 'F12'");
    flipped = file_bytes(good, four);
    flipped[8 + good.find("[0,4]") + 3] ^= 0x01;  // data_offsets [0,5]
    CHECK_REJECTED(flipped, "tensor 't'", "[0, 5]");
    CHECK_REJECTED(file_bytes(good.substr(0, good.size() - 1), four), "not valid JSON");
    CHECK_REJECTED(file_bytes("[1, 2]", {}), "not a JSON object");
    CHECK_REJECTED(file_bytes(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", four),
                   "repeats the key 't'");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F16","shape":[2],"data_offsets":[0,4]})"), four), "tensor 't'",
                   "unsupported dtype 'F16'");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})"), four), "tensor 't'",
                   "not a non-negative integer");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})"), four), "not a non-negative integer");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,4]})"), four),
                   "tensor 't'", "overflows");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]})"), four), "rank 9");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F64","shape":[1],"data_offsets":[0,4]})"), four), "tensor 't'",
                   "span 4 bytes, but F64 [1] needs 8");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})"), four), "run past the 4-byte buffer");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,0]})"), four), "end before they begin");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})"), four), "not a pair");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F32","shape":[1]})"), four), "missing field 'data_offsets'");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1})"), four), "unexpected field 'x'");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F32","shape":[[1]],"data_offsets":[0,4]})"), four), "nests deeper");
    CHECK_REJECTED(file_bytes(one("7"), four), "tensor 't'", "not a JSON object");
    CHECK_REJECTED(file_bytes(R"({"__metadata__":{"k":1}})", {}), "__metadata__ entry 'k' is not a string");
    const Bytes eight = le_bytes<float>({1.0f, 2.0f});
    CHECK_REJECTED(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight),
                   "tensor 'b'", "overlap tensor 'a'");
    CHECK_REJECTED(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight), "bytes [0, 4)", "belong to no tensor");
    CHECK_REJECTED(file_bytes(good, eight), "cover 4 bytes of the 8-byte buffer");
    CHECK_REJECTED(file_bytes(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})") + "\xff", four), "not valid JSON");
    METAGRAD_CHECK_ERROR(io::load_safetensors(dir / "missing.safetensors"), "load_safetensors", "missing.safetensors", "cannot open");
    METAGRAD_CHECK_ERROR(io::load_safetensors(dir.path), "load_safetensors", "not a regular file");
  }

  TEST_CASE("io.safetensors: a header length over 100 MB is refused before anything is read") {
    TempDir dir;
    const auto p = dir / "case.safetensors";
    write_bytes(p, file_bytes("", {}, 100'000'001));
    fs::resize_file(p, 100'000'016);  // sparse: the file is long enough, the limit must still apply
    METAGRAD_CHECK_ERROR(io::load_safetensors(p), "load_safetensors", "header length 100000001", "limit");
  }

  TEST_CASE("io.safetensors: bad tensors and paths when saving") {
    TempDir dir;
    Checkpoint c;
    METAGRAD_CHECK_ERROR(c.insert("", tensor<float>({1.0f})), "Checkpoint", "empty");
    METAGRAD_CHECK_ERROR(c.insert("__metadata__", tensor<float>({1.0f})), "Checkpoint", "reserved");
    METAGRAD_CHECK_ERROR(c.insert("t", Tensor<float>()), "Checkpoint", "'t' is undefined");
    c.insert("t", tensor<float>({1.0f}));
    METAGRAD_CHECK_ERROR(c.insert("t", tensor<double>({1.0})), "Checkpoint", "duplicate", "'t'");
    METAGRAD_CHECK_ERROR(io::save_safetensors(dir / "no/such/dir/x.safetensors", c), "save_safetensors", "no/such/dir");
    METAGRAD_CHECK_ERROR(io::save_safetensors(dir.path, c), "save_safetensors");
    CHECK(fs::is_empty(dir.path));  // no temporary left behind
  }

  TEST_CASE("io.safetensors: thousands of random mutations either load or throw metagrad::Error, never crash") {
    TempDir dir;
    Generator gen(42);
    Checkpoint c;
    c.insert("w", randn<float>(Shape{3, 2}, gen));
    c.insert("b", randn<double>(Shape{3}, gen));
    c.insert("idx", randint(0, 10, Shape{2, 2}, gen));
    c.insert("s", scalar_tensor(1.0f));
    c.metadata = {{"epoch", "3"}};
    io::save_safetensors(dir / "valid", c);
    const Bytes valid = read_bytes(dir / "valid");
    const auto p = dir / "fuzz";
    const std::size_t data_start = 8 + (valid[0] | std::size_t{valid[1]} << 8);
    int loaded = 0, rejected = 0, other = 0, data_only_failures = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int iteration = 0; iteration < 3000; ++iteration) {
      Bytes b = valid;
      const int kind = static_cast<int>(gen.below(7));
      const int edits = 1 + static_cast<int>(gen.below(4));
      for (int e = 0; e < edits; ++e) {
        const std::size_t at = gen.below(b.size());
        switch (kind) {
          case 0: b[at] ^= static_cast<unsigned char>(1u << gen.below(8)); break;           // bit flip anywhere
          case 1: b[at] = static_cast<unsigned char>(gen.below(256)); break;                // random byte anywhere
          case 2: b[gen.below(8)] = static_cast<unsigned char>(gen.below(256)); break;      // header length
          case 3: b.resize(gen.below(b.size() + 1)); break;                                 // truncation
          case 4: b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<unsigned char>("{}[]\",:0123456789-e."[gen.below(20)])); break;
          case 5:  // pure garbage, sometimes behind a plausible header length
            b.assign(gen.below(200), 0);
            for (auto& x : b) x = static_cast<unsigned char>(gen.below(256));
            if (b.size() >= 8) b[0] = static_cast<unsigned char>(gen.below(b.size())), std::fill(b.begin() + 1, b.begin() + 8, 0);
            break;
          default:  // tensor bytes only (NaNs included): the header still describes the file exactly
            b[data_start + gen.below(b.size() - data_start)] = static_cast<unsigned char>(gen.below(256));
        }
        if (b.empty()) break;
      }
      write_bytes(p, b);
      try {
        const auto r = io::load_safetensors(p);
        ++loaded;
        CHECK(r.size() == c.size());  // a file either loads completely or not at all
      } catch (const Error&) {
        ++rejected;
        data_only_failures += kind == 6;
      } catch (...) {
        ++other;
      }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    MESSAGE("fuzz: ", loaded, " loaded, ", rejected, " rejected in ", seconds, " s");
    CHECK(other == 0);
    CHECK(data_only_failures == 0);
    CHECK(loaded > 300);
    CHECK(rejected > 1500);
    CHECK(seconds < 5.0);
  }
}
