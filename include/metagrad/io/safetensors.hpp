// SPDX-License-Identifier: MIT
// Checkpoints in the safetensors format, readable and writable by PyTorch / Hugging Face:
//   8 bytes    N, the header length, unsigned little-endian
//   N bytes    a JSON object {"__metadata__": {str: str}, "<name>": {"dtype": "F32" | "F64" | "I64",
//              "shape": [...], "data_offsets": [begin, end]}, ...}, padded with spaces to a multiple of 8
//   the rest   the byte buffer: each tensor's row-major little-endian bytes at [begin, end)
// The writer lays tensors out as the reference implementation does (by dtype, widest first, then by
// name; compact JSON, "__metadata__" first) and replaces the file atomically. The reader checks the
// whole header against the file before it reads any tensor data, and every problem is a
// metagrad::Error naming the file, the tensor and what is wrong.
#pragma once
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <map>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "metagrad/core/tensor.hpp"
#include "metagrad/io/detail/atomic_file.hpp"
#include "metagrad/nn/named_tensors.hpp"

namespace metagrad::io {

static_assert(std::endian::native == std::endian::little,
              "metagrad's safetensors reader and writer copy tensor bytes as they are: they need a little-endian host");

/// A tensor of any element type a checkpoint holds.
using AnyTensor = std::variant<Tensor<float>, Tensor<double>, Tensor<std::int64_t>>;
/// The free-form string map stored under "__metadata__".
using Metadata = std::map<std::string, std::string>;

namespace detail {
/// Header lengths above this are refused (the reference implementation's limit).
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

template <Element T>
constexpr const char* safetensors_dtype() {
  if constexpr (std::same_as<T, float>) return "F32";
  else if constexpr (std::same_as<T, double>) return "F64";
  else return "I64";
}
inline const char* safetensors_dtype(const AnyTensor& t) {
  return std::visit([](const auto& x) { return safetensors_dtype<typename std::decay_t<decltype(x)>::value_type>(); }, t);
}
/// Bytes per element of a dtype metagrad reads, 0 for any other.
inline std::size_t dtype_size(std::string_view dtype) {
  return dtype == "F32" ? 4 : (dtype == "F64" || dtype == "I64") ? 8 : 0;
}
/// The reference writer's order of dtypes (its enum order); tensors are written widest first.
inline int dtype_rank(std::string_view dtype) { return dtype == "F32" ? 0 : dtype == "F64" ? 1 : 2; }

inline std::span<const std::byte> bytes_of(const AnyTensor& t) {
  return std::visit(
      [](const auto& x) {
        return std::span<const std::byte>(reinterpret_cast<const std::byte*>(x.data()),
                                          static_cast<std::size_t>(x.numel()) * sizeof(*x.data()));
      },
      t);
}
}  // namespace detail

/// Named tensors of mixed element types plus string metadata: what a safetensors file holds.
/// Names are unique; insertion order is kept.
class Checkpoint {
 public:
  using Entry = std::pair<std::string, AnyTensor>;

  Checkpoint() = default;
  template <Element T>
  explicit Checkpoint(const NamedTensors<T>& tensors, Metadata metadata = {}) : metadata(std::move(metadata)) {
    insert(tensors);
  }

  template <Element T>
  void insert(std::string name, Tensor<T> t) {
    check(!name.empty(), "Checkpoint", "a tensor name must not be empty");
    check(name != "__metadata__", "Checkpoint", "'__metadata__' is reserved for the metadata");
    check(t.defined(), "Checkpoint", "tensor '", name, "' is undefined");
    check(!index_.contains(name), "Checkpoint", "duplicate tensor name '", name, "'");
    index_.emplace(name, entries_.size());
    entries_.emplace_back(std::move(name), AnyTensor(std::move(t)));
  }
  /// Inserts every tensor of `tensors`, each under prefix + its name (e.g. "model.").
  template <Element T>
  void insert(const NamedTensors<T>& tensors, std::string_view prefix = "") {
    for (const auto& [name, t] : tensors) insert(std::string(prefix) + name, t);
  }

  bool contains(std::string_view name) const { return index_.contains(std::string(name)); }
  /// The tensor called `name`, or nullptr.
  const AnyTensor* find(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  /// The tensor called `name`, which must exist and hold element type T.
  template <Element T>
  Tensor<T> get(std::string_view name) const {
    const AnyTensor* t = find(name);
    check(t != nullptr, "Checkpoint", "no tensor named '", name, "'");
    check(std::holds_alternative<Tensor<T>>(*t), "Checkpoint", "tensor '", name, "' is ",
          detail::safetensors_dtype(*t), ", not ", detail::safetensors_dtype<T>());
    return std::get<Tensor<T>>(*t);
  }
  /// Every tensor whose name starts with `prefix`, under its name without the prefix; all of them
  /// must hold element type T.
  template <Element T>
  NamedTensors<T> named(std::string_view prefix = "") const {
    NamedTensors<T> out;
    for (const auto& [name, t] : entries_)
      if (name.starts_with(prefix)) out.insert(name.substr(prefix.size()), get<T>(name));
    return out;
  }

  const std::vector<Entry>& entries() const { return entries_; }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  Metadata metadata;

 private:
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

/// Writes `checkpoint` to `path` in the safetensors format, atomically (see io/detail/atomic_file.hpp).
inline void save_safetensors(const std::filesystem::path& path, const Checkpoint& checkpoint) {
  const auto& entries = checkpoint.entries();
  for (const auto& [name, t] : entries) {
    const bool cpu = std::visit([](const auto& x) { return x.device().is_cpu(); }, t);
    check(cpu, "save_safetensors", "'", path.string(), "': tensor '", name, "' is not on the CPU");
  }
  std::vector<std::size_t> order(entries.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const int ra = detail::dtype_rank(detail::safetensors_dtype(entries[a].second));
    const int rb = detail::dtype_rank(detail::safetensors_dtype(entries[b].second));
    return ra != rb ? ra > rb : entries[a].first < entries[b].first;
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!checkpoint.metadata.empty()) header["__metadata__"] = checkpoint.metadata;
  std::uint64_t offset = 0;
  for (std::size_t i : order) {
    const auto& [name, t] = entries[i];
    const auto shape = std::visit([](const auto& x) { return x.shape().vec(); }, t);
    const std::uint64_t bytes = detail::bytes_of(t).size();
    header[name] = {{"dtype", detail::safetensors_dtype(t)}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the buffer starts 8-byte aligned

  std::array<std::byte, 8> length{};
  for (std::size_t k = 0; k < 8; ++k) length[k] = static_cast<std::byte>((text.size() >> (8 * k)) & 0xff);
  io::detail::write_file_atomically(path, "save_safetensors", [&](auto&& write) {
    write(std::span<const std::byte>(length));
    write(std::as_bytes(std::span<const char>(text)));
    for (std::size_t i : order) write(detail::bytes_of(entries[i].second));
  });
}

/// save_safetensors for tensors of one element type (a module's state_dict(), say).
template <Element T>
void save_safetensors(const std::filesystem::path& path, const NamedTensors<T>& tensors, Metadata metadata = {}) {
  save_safetensors(path, Checkpoint(tensors, std::move(metadata)));
}

namespace detail {

/// One header entry, checked against the buffer size.
struct HeaderEntry {
  std::string name;
  std::string dtype;
  Shape shape;
  std::uint64_t begin = 0, end = 0;
};

/// Throws a metagrad::Error "load_safetensors: '<file>': <parts>".
template <class... Parts>
[[noreturn]] void reject(const std::filesystem::path& path, Parts&&... parts) {
  fail("load_safetensors", "'", path.string(), "': ", std::forward<Parts>(parts)...);
}

/// Parses the header text as JSON, refusing duplicate keys and nesting a safetensors header never has.
inline nlohmann::json parse_header(const std::string& text, const std::filesystem::path& path) {
  std::vector<std::unordered_set<std::string>> keys;  // one set per open object
  auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& value) {
    using E = nlohmann::json::parse_event_t;
    if (depth > 3) reject(path, "the header nests deeper than a safetensors header does");
    if (event == E::object_start) keys.emplace_back();
    if (event == E::object_end && !keys.empty()) keys.pop_back();
    if (event == E::key && !keys.empty() && !keys.back().insert(value.get<std::string>()).second)
      reject(path, "the header repeats the key '", value.get<std::string>(), "'");
    return true;
  };
  try {
    return nlohmann::json::parse(text, callback);
  } catch (const nlohmann::json::exception& e) {
    reject(path, "the header is not valid JSON (", e.what(), ")");
  }
}

inline bool is_count(const nlohmann::json& v) { return v.is_number_unsigned(); }

/// Checks one tensor entry's fields, dtype, shape and offsets against a buffer of buffer_size bytes.
inline HeaderEntry check_entry(const std::string& name, const nlohmann::json& info, std::uint64_t buffer_size,
                               const std::filesystem::path& path) {
  auto bad = [&](auto&&... parts) { reject(path, "tensor '", name, "': ", parts...); };
  if (!info.is_object()) bad("its entry is not a JSON object");
  for (const auto& [key, value] : info.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets") bad("unexpected field '", key, "'");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!info.contains(field)) bad("missing field '", field, "'");
  HeaderEntry e;
  e.name = name;
  if (!info.at("dtype").is_string()) bad("dtype is not a string");
  e.dtype = info.at("dtype").get<std::string>();
  const std::uint64_t element = dtype_size(e.dtype);
  if (element == 0) bad("unsupported dtype '", e.dtype, "' (metagrad reads F32, F64 and I64)");
  const auto& shape = info.at("shape");
  if (!shape.is_array()) bad("shape is not an array");
  if (shape.size() > static_cast<std::size_t>(kMaxRank)) bad("rank ", shape.size(), " exceeds the maximum ", kMaxRank);
  std::uint64_t bytes = element;
  for (const auto& d : shape) {
    if (!is_count(d)) bad("shape ", shape.dump(), " has an entry that is not a non-negative integer");
    const std::uint64_t extent = d.get<std::uint64_t>();
    if (extent > static_cast<std::uint64_t>(INT64_MAX) || __builtin_mul_overflow(bytes, extent, &bytes))
      bad("shape ", shape.dump(), " overflows 64-bit sizes");
    e.shape.push_back(static_cast<std::int64_t>(extent));
  }
  if (bytes > static_cast<std::uint64_t>(INT64_MAX)) bad("shape ", shape.dump(), " overflows 64-bit sizes");
  const auto& offsets = info.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !is_count(offsets[0]) || !is_count(offsets[1]))
    bad("data_offsets ", offsets.dump(), " is not a pair of non-negative integers");
  e.begin = offsets[0].get<std::uint64_t>();
  e.end = offsets[1].get<std::uint64_t>();
  if (e.begin > e.end) bad("data_offsets [", e.begin, ", ", e.end, "] end before they begin");
  if (e.end > buffer_size) bad("data_offsets [", e.begin, ", ", e.end, "] run past the ", buffer_size, "-byte buffer");
  if (e.end - e.begin != bytes)
    bad("data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin, " bytes, but ", e.dtype, " ", e.shape,
        " needs ", bytes);
  return e;
}

/// Reads the tensor `e` from the open file, whose buffer starts at byte `buffer_start`.
template <Element T>
Tensor<T> read_tensor(int fd, const HeaderEntry& e, std::uint64_t buffer_start, const std::filesystem::path& path) {
  auto t = Tensor<T>::empty(e.shape);
  auto bytes = std::as_writable_bytes(std::span<T>(t.fresh_data(), static_cast<std::size_t>(t.numel())));
  if (::lseek(fd, static_cast<off_t>(buffer_start + e.begin), SEEK_SET) < 0 || !io::detail::read_all(fd, bytes))
    reject(path, "tensor '", e.name, "': reading its ", bytes.size(), " bytes failed: ", io::detail::errno_text());
  return t;
}

}  // namespace detail

/// Reads a safetensors file. Everything in the header is validated before any tensor data is read:
/// its length (>= 8-byte file, <= file size - 8, <= 100 MB), that it is a JSON object without
/// repeated keys, each entry's fields, dtype (F32, F64, I64), shape (non-negative, no overflow) and
/// data_offsets (inside the buffer, end - begin = numel * element size), and that the tensors cover
/// the buffer exactly, without overlap or gap. The entries come in buffer order.
inline Checkpoint load_safetensors(const std::filesystem::path& path) {
  using detail::reject;
  io::detail::FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) reject(path, "cannot open: ", io::detail::errno_text());
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) reject(path, "cannot stat: ", io::detail::errno_text());
  if (!S_ISREG(info.st_mode)) reject(path, "not a regular file");
  const auto file_size = static_cast<std::uint64_t>(info.st_size);
  if (file_size < 8) reject(path, "the file has ", file_size, " bytes, fewer than the 8 of the header length");

  std::array<unsigned char, 8> length_bytes{};
  if (!io::detail::read_all(fd.get(), std::as_writable_bytes(std::span(length_bytes))))
    reject(path, "cannot read the header length: ", io::detail::errno_text());
  std::uint64_t header_size = 0;
  for (std::size_t k = 0; k < 8; ++k) header_size |= static_cast<std::uint64_t>(length_bytes[k]) << (8 * k);
  if (header_size > file_size - 8)
    reject(path, "the header length ", header_size, " exceeds the ", file_size - 8, " bytes after the length field");
  if (header_size > detail::kMaxHeaderBytes)
    reject(path, "the header length ", header_size, " exceeds the limit of ", detail::kMaxHeaderBytes, " bytes");
  std::string text(static_cast<std::size_t>(header_size), '\0');
  if (!io::detail::read_all(fd.get(), std::as_writable_bytes(std::span(text))))
    reject(path, "cannot read the ", header_size, "-byte header: ", io::detail::errno_text());

  const nlohmann::json header = detail::parse_header(text, path);
  if (!header.is_object()) reject(path, "the header is not a JSON object");
  const std::uint64_t buffer_start = 8 + header_size, buffer_size = file_size - buffer_start;
  Checkpoint out;
  std::vector<detail::HeaderEntry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) reject(path, "__metadata__ is not a JSON object");
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string()) reject(path, "__metadata__ entry '", key, "' is not a string");
        out.metadata.emplace(key, v.get<std::string>());
      }
      continue;
    }
    if (name.empty()) reject(path, "a tensor has an empty name");
    entries.push_back(detail::check_entry(name, value, buffer_size, path));
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return std::pair(a.begin, a.end) < std::pair(b.begin, b.end); });
  std::uint64_t covered = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (e.begin < covered)
      reject(path, "tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end, "] overlap tensor '",
             entries[i - 1].name, "' [", entries[i - 1].begin, ", ", entries[i - 1].end, "]");
    if (e.begin > covered)
      reject(path, "bytes [", covered, ", ", e.begin, ") of the buffer belong to no tensor (before tensor '", e.name, "')");
    covered = e.end;
  }
  if (covered != buffer_size)
    reject(path, "the tensors cover ", covered, " bytes of the ", buffer_size, "-byte buffer; the rest belongs to none");

  for (const auto& e : entries) {
    if (e.dtype == "F32") out.insert(e.name, detail::read_tensor<float>(fd.get(), e, buffer_start, path));
    else if (e.dtype == "F64") out.insert(e.name, detail::read_tensor<double>(fd.get(), e, buffer_start, path));
    else out.insert(e.name, detail::read_tensor<std::int64_t>(fd.get(), e, buffer_start, path));
  }
  return out;
}

}  // namespace metagrad::io
