// SPDX-License-Identifier: MIT
// learn/run_store: a saved unit reads back as saved; a missing one is nothing; a unit written under
// another fingerprint lives in another folder, and one whose file carries a foreign fingerprint is
// refused naming the setting that differs; a broken file is refused, not reused; shards split the
// units between them exactly once; --shard's text is checked; unit keys are file names that keep
// distinct labels apart.
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <unistd.h>

#include "metagrad/learn/run_store.hpp"
#include "test_util.hpp"

namespace run_store_test {

namespace fs = std::filesystem;
using metagrad::learn::Json;
using metagrad::learn::RunStore;

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("metagrad-run-store-" + std::to_string(::getpid()));
  TempDir() { fs::remove_all(path); }
  ~TempDir() { fs::remove_all(path); }
};

const Json kFingerprint{{"epochs", 20}, {"lr", 3e-4}, {"data", "mnist"}};

}  // namespace run_store_test

TEST_CASE("run_store: a saved unit reads back; a missing one is nothing") {
  using namespace run_store_test;
  TempDir tmp;
  RunStore store(tmp.path, kFingerprint);
  CHECK_FALSE(store.load("erm_seed_0").has_value());
  const Json value{{"test_acc", 0.75}, {"best_epoch", 7}, {"values", {1.5, 2.5}}};
  store.save("erm_seed_0", value);
  const auto back = store.load("erm_seed_0");
  REQUIRE(back.has_value());
  CHECK(*back == value);
  // A second store over the same folder and fingerprint (the next process) sees it.
  RunStore again(tmp.path, kFingerprint);
  CHECK(again.dir() == store.dir());
  CHECK(again.load("erm_seed_0").has_value());
  // No temporary file is left beside it.
  int files = 0;
  for (const auto& e : fs::directory_iterator(store.dir())) files += e.is_regular_file();
  CHECK(files == 1);
}

TEST_CASE("run_store: other settings live apart, a foreign or broken unit is refused") {
  using namespace run_store_test;
  TempDir tmp;
  RunStore store(tmp.path, kFingerprint);
  store.save("unit", Json{{"x", 1}});
  Json other = kFingerprint;
  other["epochs"] = 25;
  RunStore elsewhere(tmp.path, other);
  CHECK(elsewhere.dir() != store.dir());
  CHECK_FALSE(elsewhere.load("unit").has_value());
  // The same file copied under the other fingerprint's folder: refused, naming what differs.
  fs::copy_file(store.dir() / "unit.json", elsewhere.dir() / "unit.json");
  METAGRAD_CHECK_ERROR(elsewhere.load("unit"), "RunStore", "other settings", "epochs");
  {
    std::ofstream broken(store.dir() / "half.json");
    broken << "{\"fingerprint\": {\"epochs\": 2";
  }
  METAGRAD_CHECK_ERROR(store.load("half"), "RunStore", "half.json", "not valid JSON");
  {
    std::ofstream bare(store.dir() / "bare.json");
    bare << "{\"value\": 1}";
  }
  METAGRAD_CHECK_ERROR(store.load("bare"), "RunStore", "lacks its fingerprint");
}

TEST_CASE("run_store: shards cover every unit exactly once; bad --shard text is refused") {
  using namespace metagrad::learn;
  for (int count : {1, 2, 3}) {
    std::multiset<std::size_t> owned;
    for (int i = 0; i < count; ++i) {
      const Shard s = parse_shard(std::to_string(i) + "/" + std::to_string(count));
      CHECK(s.whole() == (count == 1));
      for (std::size_t unit = 0; unit < 10; ++unit)
        if (s.owns(unit)) owned.insert(unit);
    }
    CHECK(owned.size() == 10);
    for (std::size_t unit = 0; unit < 10; ++unit) CHECK(owned.count(unit) == 1);
  }
  for (const char* bad : {"2/2", "-1/2", "1", "1/", "/2", "a/b", "1/0", "0/2x", "1.5/3"})
    METAGRAD_CHECK_ERROR(parse_shard(bad), "--shard", bad);
}

TEST_CASE("run_store: unit keys are file names and keep labels apart") {
  using metagrad::learn::unit_key_of;
  const auto a = unit_key_of("ibp_ex eps 0->2 alpha0=1 seed 3");
  CHECK(a.find_first_of(" /=>\\") == std::string::npos);
  CHECK(a.starts_with("ibp_ex_eps_0-_2_alpha0_1_seed_3_"));
  // Labels that differ only in characters the file name replaces still get different keys.
  CHECK(unit_key_of("rrr lambda=10") != unit_key_of("rrr lambda 10"));
  CHECK(unit_key_of("x/y") != unit_key_of("x_y"));
  CHECK(unit_key_of("same") == unit_key_of("same"));
}
