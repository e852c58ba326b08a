// SPDX-License-Identifier: MIT
// Finished units of a long sweep kept on disk, so the sweep survives being stopped and can be
// split between processes. A sweep at the paper's scale runs for hours on this machine's two cores:
// one JSON file per unit (say, one student: seed × N × condition), written atomically and tagged
// with the sweep's fingerprint (every setting the unit's result depends on). A rerun with the same
// --out skips the units already there; `--shard I/K` makes a process train only units i with
// i mod K == I, so K processes share the work and a last run without --shard collects every unit
// and writes the results. Each fingerprint has its own folder (units/<hash of the fingerprint>), so
// runs under other settings never meet; a unit file whose fingerprint differs is an error, never
// silently reused. The fingerprint holds settings, not the program's version: run the shards of one
// sweep with the same build.
#pragma once
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "metagrad/core/error.hpp"
#include "metagrad/io/detail/atomic_file.hpp"

namespace metagrad::learn {

using Json = nlohmann::ordered_json;

/// 16 hex digits of the FNV-1a hash of `text`: a few lines, and the same on every platform (std::hash
/// need not be).
inline std::string fnv1a_hex(const std::string& text) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

/// A file name for the unit called `label`: its letters, digits, '.' and '-', the rest as '_', and
/// 8 hex digits of its hash, so two labels that read alike never share a file.
inline std::string unit_key_of(const std::string& label) {
  std::string key;
  for (char c : label) key += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_';
  return key + "_" + fnv1a_hex(label).substr(0, 8);
}

/// Which units this process trains: i mod count == index.
struct Shard {
  int index = 0, count = 1;
  bool owns(std::size_t unit) const { return static_cast<int>(unit % static_cast<std::size_t>(count)) == index; }
  bool whole() const { return count == 1; }
};

/// Parses "I/K" (0 <= I < K).
inline Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  Shard s;
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < text.size();
  if (ok) {
    try {
      std::size_t used_index = 0, used_count = 0;
      s.index = std::stoi(text.substr(0, slash), &used_index);
      s.count = std::stoi(text.substr(slash + 1), &used_count);
      ok = used_index == slash && used_count == text.size() - slash - 1;
    } catch (const std::exception&) {
      ok = false;
    }
  }
  check(ok && s.count >= 1 && s.index >= 0 && s.index < s.count, "--shard", "'", text,
        "' is not I/K with 0 <= I < K (e.g. 0/2 and 1/2 for two processes)");
  return s;
}

class RunStore {
 public:
  /// The units live in root/units/<16 hex digits of the fingerprint's FNV-1a hash> (created);
  /// `fingerprint` is every setting their results depend on.
  RunStore(const std::filesystem::path& root, Json fingerprint)
      : dir_(root / "units" / fnv1a_hex(fingerprint.dump())), fingerprint_(std::move(fingerprint)) {
    std::filesystem::create_directories(dir_);
  }

  const std::filesystem::path& dir() const { return dir_; }
  const Json& fingerprint() const { return fingerprint_; }

  /// The unit `key`'s saved value, or nothing when it has not been run. A file that is not a unit
  /// of this sweep (unreadable, or written under other settings) is an error naming what differs.
  std::optional<Json> load(const std::string& key) const {
    const auto path = path_of(key);
    if (!std::filesystem::exists(path)) return std::nullopt;
    Json doc;
    try {
      std::ifstream in(path);
      doc = Json::parse(in);
    } catch (const std::exception& e) {
      fail("RunStore", "'", path.string(), "' is not valid JSON (", e.what(), "); delete it to rerun that unit");
    }
    check(doc.is_object() && doc.contains("fingerprint") && doc.contains("value"), "RunStore", "'", path.string(),
          "' lacks its fingerprint or value; delete it to rerun that unit");
    if (doc["fingerprint"] != fingerprint_) {
      std::string differing;
      for (const auto& [k, v] : fingerprint_.items())
        if (!doc["fingerprint"].contains(k) || doc["fingerprint"][k] != v) differing += (differing.empty() ? "" : ", ") + k;
      for (const auto& [k, v] : doc["fingerprint"].items())
        if (!fingerprint_.contains(k)) differing += (differing.empty() ? "" : ", ") + k;
      fail("RunStore", "'", path.string(), "' was written by a run with other settings (", differing,
           "); use another --out, or delete ", dir_.string(), " to start this sweep afresh");
    }
    return doc["value"];
  }

  /// Saves the unit `key`'s value atomically (a reader never sees half a unit).
  void save(const std::string& key, const Json& value) const {
    const Json doc{{"fingerprint", fingerprint_}, {"value", value}};
    const std::string text = doc.dump(1) + '\n';
    io::detail::write_file_atomically(path_of(key), "RunStore",
                                      [&](auto&& write) { write(std::as_bytes(std::span(text))); });
  }

 private:
  std::filesystem::path path_of(const std::string& key) const { return dir_ / (key + ".json"); }

  std::filesystem::path dir_;
  Json fingerprint_;
};

}  // namespace metagrad::learn
