// SPDX-License-Identifier: MIT
// Where the fetched data sets live and what to tell a user whose data set is missing. Data sets are
// never committed: examples/fetch_data.sh copies them into a cache folder outside the repository,
// ${METAGRAD_DATA:-$HOME/.cache/metagrad}, and every loader points back at that script.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "metagrad/core/error.hpp"

namespace metagrad::data {

/// The cache folder: $METAGRAD_DATA if set and non-empty, else $HOME/.cache/metagrad.
inline std::filesystem::path data_dir() {
  if (const char* dir = std::getenv("METAGRAD_DATA"); dir != nullptr && *dir != '\0') return dir;
  const char* home = std::getenv("HOME");
  check(home != nullptr && *home != '\0', "data_dir", "neither METAGRAD_DATA nor HOME is set; set METAGRAD_DATA to ",
        "the folder examples/fetch_data.sh should fill");
  return std::filesystem::path(home) / ".cache" / "metagrad";
}

/// The one sentence every loader gives when `set` is not fetched.
inline std::string fetch_hint(std::string_view set) {
  return metagrad::detail::concat("the ", set, " data set is not fetched; run `examples/fetch_data.sh ", set,
                        "` from the metagrad repository (it fills ${METAGRAD_DATA:-$HOME/.cache/metagrad})");
}

/// Returns `path` if it is a regular file, otherwise throws "<op>: <path> not found: <fetch hint>".
inline std::filesystem::path require_fetched(const char* op, std::string_view set, const std::filesystem::path& path) {
  std::error_code ec;
  check(std::filesystem::is_regular_file(path, ec), op, path.string(), " not found: ", fetch_hint(set));
  return path;
}

}  // namespace metagrad::data
