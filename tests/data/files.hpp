// SPDX-License-Identifier: MIT
// Scratch files for the data tests: a fresh directory per test and whole-file writes.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace metagrad::testing {

/// An empty directory under the system temp dir, unique to this process and `name`.
inline std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("metagrad-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// Writes `text` to `file` (creating its directory), replacing what was there.
inline void write_text(const std::filesystem::path& file, const std::string& text) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << text;
}

}  // namespace metagrad::testing
