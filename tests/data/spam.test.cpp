// SPDX-License-Identifier: MIT
// The SpamAssassin reader on a small corpus written here (and corrupt variants), and on the real
// fetched package when it is there.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "metagrad/data/spam.hpp"
#include "metagrad/data/text.hpp"
#include "data/files.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using metagrad::testing::fresh_dir;
using metagrad::testing::write_text;
namespace md = metagrad::data;

namespace {

/// A three-email corpus in the package's layout.
fs::path small_corpus() {
  const fs::path dir = fresh_dir("spam");
  write_text(dir / "file_list.json", R"(["spam-1/00001.aa.txt", "easy-ham-1/00002.bb.txt", "hard-ham-1/00003.cc.txt"])");
  write_text(dir / "spam-1/00001.aa.json",
             R"({"id":"00001","group":"spam-1","checksum":{"type":"MD5","value":"aa"},"text":"Subject: FREE money\nClick!"})");
  write_text(dir / "easy-ham-1/00002.bb.json", R"({"id":"00002","group":"easy-ham-1","text":"Meeting at 10"})");
  write_text(dir / "hard-ham-1/00003.cc.json", R"({"id":"00003","group":"hard-ham-1","text":"caf\u00e9 newsletter"})");
  return dir;
}

}  // namespace

TEST_SUITE("data.spam") {
  TEST_CASE("data.read_spam_assassin: texts, ids, groups and spam = 1 / ham = 0, in list order") {
    const auto dir = small_corpus();
    const auto c = md::read_spam_assassin(dir);
    CHECK(c.size() == 3);
    CHECK(c.labels == std::vector<std::int64_t>{1, 0, 0});
    CHECK(c.ids == std::vector<std::string>{"00001", "00002", "00003"});
    CHECK(c.groups[2] == "hard-ham-1");
    CHECK(c.texts[0] == "Subject: FREE money\nClick!");
    CHECK(c.texts[2] == "caf\xc3\xa9 newsletter");
    CHECK(md::tokenize(c.texts[0]) == std::vector<std::string>{"subject", "free", "money", "click"});
    fs::remove_all(dir);
  }

  TEST_CASE("data.read_spam_assassin: corrupt files and missing fields name the file") {
    const auto dir = small_corpus();
    const auto email = dir / "easy-ham-1/00002.bb.json";
    write_text(email, R"({"id":"00002","group":"easy-ham-1"})");
    METAGRAD_CHECK_ERROR(md::read_spam_assassin(dir), "read_spam_assassin", "00002.bb.json", "missing field \"text\"");
    write_text(email, R"({"id":"00002","group":"easy-ham-1","text":17})");
    METAGRAD_CHECK_ERROR(md::read_spam_assassin(dir), "00002.bb.json", "field \"text\" must be a string, not number");
    write_text(email, R"({"id":"00002","group":"phishing","text":"x"})");
    METAGRAD_CHECK_ERROR(md::read_spam_assassin(dir), "00002.bb.json", "group \"phishing\" is neither spam nor ham");
    write_text(email, R"({"id":"00002","group":"easy-ham-1","text":"unterminated)");
    METAGRAD_CHECK_ERROR(md::read_spam_assassin(dir), "00002.bb.json", "not valid JSON");
    write_text(email, R"(["not", "an", "object"])");
    METAGRAD_CHECK_ERROR(md::read_spam_assassin(dir), "00002.bb.json", "must be an object");
    fs::remove(email);
    METAGRAD_CHECK_ERROR(md::read_spam_assassin(dir), "00002.bb.json", "cannot open");
    write_text(dir / "file_list.json", R"(["spam-1/00001.aa.txt", 3])");
    METAGRAD_CHECK_ERROR(md::read_spam_assassin(dir), "file_list.json", "entry 1 is number, not a string");
    write_text(dir / "file_list.json", R"(["../../etc/passwd.txt"])");
    METAGRAD_CHECK_ERROR(md::read_spam_assassin(dir), "file_list.json", "is not a path inside");
    write_text(dir / "file_list.json", R"({"files": []})");
    METAGRAD_CHECK_ERROR(md::read_spam_assassin(dir), "file_list.json", "must be an array");
    fs::remove_all(dir);
    METAGRAD_CHECK_ERROR(md::read_spam_assassin(dir), "file_list.json", "cannot open");
  }

  TEST_CASE("data.load_spam_assassin: the real fetched corpus (skipped when not fetched)") {
    if (!fs::exists(md::data_dir() / "spam-assassin" / "file_list.json")) {
      MESSAGE("skipped: SpamAssassin is not fetched; run examples/fetch_data.sh spam-assassin");
      return;
    }
    const auto c = md::load_spam_assassin();
    CHECK(c.size() == 6046);
    std::int64_t spam = 0;
    for (auto y : c.labels) spam += y;
    CHECK(spam == 1896);  // spam-1: 500, spam-2: 1396; ham: 2500 + 1400 + 250
    md::Documents docs;
    for (std::size_t i = 0; i < 200; ++i) docs.push_back(md::tokenize(c.texts[i]));
    const auto vocab = md::Vocabulary::build(docs, 5);
    CHECK(vocab.size() > 100);
  }
}

TEST_SUITE("data.spam") {
  TEST_CASE("data.subject_and_body: the Subject line and the body, the other headers dropped") {
    const std::string email = "From: a@b.c\nSubject: Cheap pills\nX-Mailer: z\n\nBuy now.\n\nBye";
    CHECK(md::subject_and_body(email) == " Cheap pills\nBuy now.\n\nBye");
    CHECK(md::subject_and_body("From: a@b.c\n\nbody") == "\nbody");
    CHECK(md::subject_and_body("Subject: only headers") == " only headers");
  }
}
