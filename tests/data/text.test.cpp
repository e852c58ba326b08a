// SPDX-License-Identifier: MIT
// Text to tensors: tokenizer, vocabulary (min count, order, unknowns), padded ids + masks,
// bag of words, and the text data set's subsets and batching.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "metagrad/data/text.hpp"
#include "test_util.hpp"

namespace md = metagrad::data;
using metagrad::Shape;

TEST_SUITE("data.text") {
  TEST_CASE("data.tokenize: lowercase ASCII alphanumeric runs") {
    CHECK(md::tokenize("Hello, WORLD! 42x  e-mail\tFREE$$$ caf\xc3\xa9") ==
          std::vector<std::string>{"hello", "world", "42x", "e", "mail", "free", "caf"});
    CHECK(md::tokenize("").empty());
    CHECK(md::tokenize(" ,.; ").empty());
    CHECK(md::tokenize("end") == std::vector<std::string>{"end"});
  }

  TEST_CASE("data.Vocabulary: pad and unk first, then by count (ties alphabetical), min count, max size") {
    const md::Documents docs{{"b", "a", "c", "b"}, {"a", "b", "d"}, {"c", "e"}};
    const auto v = md::Vocabulary::build(docs);
    CHECK(v.size() == 7);
    CHECK(v.token(0) == "<pad>");
    CHECK(v.token(1) == "<unk>");
    CHECK(v.token(2) == "b");  // 3 times
    CHECK(v.token(3) == "a");  // 2 times, before c (also 2) alphabetically
    CHECK(v.token(4) == "c");
    CHECK(v.token(5) == "d");
    CHECK(v.token(6) == "e");
    CHECK(v.id("c") == 4);
    CHECK(v.id("zzz") == md::Vocabulary::kUnk);
    const auto v2 = md::Vocabulary::build(docs, /*min_count=*/2);
    CHECK(v2.size() == 5);
    CHECK(v2.id("d") == md::Vocabulary::kUnk);
    CHECK(md::Vocabulary::build(docs, 1, /*max_size=*/4).size() == 4);
    CHECK(md::Vocabulary::build({{"<pad>", "x"}}).size() == 3);  // the literal "<pad>" is not added twice
    METAGRAD_CHECK_ERROR(md::Vocabulary::build(docs, 0), "Vocabulary::build", "min_count");
    METAGRAD_CHECK_ERROR(v.token(7), "Vocabulary::token", "id 7 is out of range for 7");
  }

  TEST_CASE("data.encode: ids padded or truncated to max_len, mask 1 on tokens") {
    const md::Documents docs{{"a", "b", "zz"}, {}, {"b", "b", "a", "a", "b"}};
    const auto v = md::Vocabulary::build({{"a", "b", "b"}});
    const auto [ids, mask] = md::encode(docs, v, 4);
    CHECK(ids.shape() == Shape{3, 4});
    CHECK(ids.to_vector() == std::vector<std::int64_t>{3, 2, 1, 0, 0, 0, 0, 0, 2, 2, 3, 3});
    CHECK(mask.to_vector() == std::vector<float>{1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1});
    METAGRAD_CHECK_ERROR(md::encode(docs, v, 0), "encode", "max_len");
  }

  TEST_CASE("data.bag_of_words: counts per id, or presence") {
    const auto v = md::Vocabulary::build({{"a", "b", "b"}});  // <pad> <unk> b a
    const md::Documents docs{{"a", "b", "b", "q"}, {}};
    const auto bow = md::bag_of_words<double>(docs, v);
    CHECK(bow.shape() == Shape{2, 4});
    CHECK(bow.to_vector() == std::vector<double>{0, 1, 2, 1, 0, 0, 0, 0});
    CHECK(md::bag_of_words<double>(docs, v, true).to_vector() == std::vector<double>{0, 1, 1, 1, 0, 0, 0, 0});
  }

  TEST_CASE("data.TextDataset: built from texts, subsets and batches keep rows together") {
    const std::vector<std::string> texts{"free money now", "meeting at noon", "FREE free FREE", "lunch?"};
    const std::vector<std::int64_t> labels{1, 0, 1, 0};
    md::Documents docs;
    for (const auto& t : texts) docs.push_back(md::tokenize(t));
    const auto vocab = md::Vocabulary::build(docs);
    const auto ds = md::make_text_dataset(texts, labels, vocab, 3);
    CHECK(ds.ids.shape() == Shape{4, 3});
    CHECK(ds.ids.at({2, 0}) == vocab.id("free"));
    CHECK(ds.mask.at({3, 1}) == 0.0f);
    const std::vector<std::int64_t> pick{2, 3};
    const auto sub = ds.subset(pick);
    CHECK(sub.labels.to_vector() == std::vector<std::int64_t>{1, 0});
    CHECK(sub.ids.at({1, 0}) == vocab.id("lunch"));
    std::int64_t seen = 0;
    for (const auto& batch : md::Loader(ds, 3, 9).epoch(0)) seen += batch.size();
    CHECK(seen == 4);
    METAGRAD_CHECK_ERROR(md::make_text_dataset(texts, {1, 0}, vocab, 3), "make_text_dataset", "4 texts but 2 labels");
  }
}
