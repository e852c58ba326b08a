// SPDX-License-Identifier: MIT
// Text to tensors for the small text models (the spam-vs-ham transformer, bag-of-words baselines):
// a tokenizer (lowercase ASCII alphanumeric runs), a vocabulary with a minimum count and a
// deterministic order, padded id sequences with their masks, bag-of-words counts, and a text data
// set that the Loader batches like the image one.
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "metagrad/core/error.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/data/dataset.hpp"

namespace metagrad::data {

/// Maximal runs of ASCII letters and digits, lowercased; every other byte (punctuation, space,
/// non-ASCII) separates tokens.
inline std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> tokens;
  std::string cur;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      cur.push_back(static_cast<char>(c));
    } else if (c >= 'A' && c <= 'Z') {
      cur.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if (!cur.empty()) {
      tokens.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) tokens.push_back(std::move(cur));
  return tokens;
}

using Documents = std::vector<std::vector<std::string>>;

/// Token ↔ id. Id 0 is padding ("<pad>"), 1 the unknown token ("<unk>"); then the tokens that occur
/// at least min_count times, most frequent first (ties alphabetical), at most max_size ids in all.
class Vocabulary {
 public:
  static constexpr std::int64_t kPad = 0, kUnk = 1;

  static Vocabulary build(const Documents& docs, std::int64_t min_count = 1, std::int64_t max_size = -1) {
    check(min_count >= 1, "Vocabulary::build", "min_count must be >= 1, got ", min_count);
    check(max_size < 0 || max_size >= 2, "Vocabulary::build", "max_size must be >= 2 (padding and unknown) or -1, got ",
          max_size);
    std::unordered_map<std::string, std::int64_t> counts;
    for (const auto& doc : docs)
      for (const auto& t : doc) ++counts[t];
    std::vector<std::pair<std::string, std::int64_t>> kept;
    for (auto& [t, c] : counts)
      if (c >= min_count) kept.emplace_back(t, c);
    std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    Vocabulary v;
    for (const auto& [t, c] : kept) {
      if (max_size >= 0 && v.size() >= max_size) break;
      if (!v.index_.contains(t)) v.add(t);  // a document may hold the literal "<pad>" or "<unk>"
    }
    return v;
  }

  std::int64_t size() const { return static_cast<std::int64_t>(tokens_.size()); }
  /// The id of `token`, kUnk when it is not in the vocabulary.
  std::int64_t id(const std::string& token) const {
    const auto it = index_.find(token);
    return it == index_.end() ? kUnk : it->second;
  }
  const std::string& token(std::int64_t id) const {
    check(id >= 0 && id < size(), "Vocabulary::token", "id ", id, " is out of range for ", size(), " tokens");
    return tokens_[static_cast<std::size_t>(id)];
  }

 private:
  Vocabulary() {
    add("<pad>");
    add("<unk>");
  }
  void add(const std::string& t) {
    index_.emplace(t, size());
    tokens_.push_back(t);
  }
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int64_t> index_;
};

/// Token ids [N, max_len] (the first max_len tokens of each document, then kPad) and the mask
/// [N, max_len]: 1 on real tokens, 0 on padding. A document with no tokens is all padding.
template <Floating T = float>
std::pair<IndexTensor, Tensor<T>> encode(const Documents& docs, const Vocabulary& vocab, std::int64_t max_len) {
  check(max_len >= 1, "encode", "max_len must be >= 1, got ", max_len);
  const auto n = static_cast<std::int64_t>(docs.size());
  auto ids = IndexTensor::empty(Shape{n, max_len});
  auto mask = Tensor<T>::empty(Shape{n, max_len});
  std::int64_t* id = ids.fresh_data();
  T* m = mask.fresh_data();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto& doc = docs[static_cast<std::size_t>(i)];
    const auto len = std::min<std::int64_t>(max_len, static_cast<std::int64_t>(doc.size()));
    for (std::int64_t t = 0; t < max_len; ++t) {
      id[i * max_len + t] = t < len ? vocab.id(doc[static_cast<std::size_t>(t)]) : Vocabulary::kPad;
      m[i * max_len + t] = t < len ? T(1) : T(0);
    }
  }
  return {ids, mask};
}

/// Bag of words [N, vocab.size()]: how often each id occurs in each document (unknown tokens count
/// under kUnk; the kPad column stays 0), or 0/1 presence when `binary`.
template <Floating T = float>
Tensor<T> bag_of_words(const Documents& docs, const Vocabulary& vocab, bool binary = false) {
  const auto n = static_cast<std::int64_t>(docs.size()), v = vocab.size();
  auto out = Tensor<T>::empty(Shape{n, v});
  T* p = out.fresh_data();
  std::fill(p, p + n * v, T(0));
  for (std::int64_t i = 0; i < n; ++i)
    for (const auto& t : docs[static_cast<std::size_t>(i)]) {
      T& cell = p[i * v + vocab.id(t)];
      cell = binary ? T(1) : cell + T(1);
    }
  return out;
}

/// Padded token ids [N, L], their mask [N, L] (1 = token) and labels [N].
template <Floating T = float>
struct TextDataset {
  IndexTensor ids;
  Tensor<T> mask;
  IndexTensor labels;

  std::int64_t size() const { return labels.defined() ? labels.numel() : 0; }
  void validate(const char* op = "TextDataset") const {
    check(ids.defined() && mask.defined() && labels.defined(), op, "needs ids, mask and labels");
    check(ids.dim() == 2 && mask.shape() == ids.shape(), op, "ids of shape ", ids.shape(), " and mask of shape ",
          mask.shape(), " must both be [N, L]");
    check(labels.dim() == 1 && labels.size(0) == ids.size(0), op, "labels of shape ", labels.shape(),
          " do not match ids of shape ", ids.shape());
  }
  TextDataset subset(std::span<const std::int64_t> index) const {
    validate("TextDataset::subset");
    return {take_rows(ids, index, "TextDataset::subset"), take_rows(mask, index, "TextDataset::subset"),
            take_rows(labels, index, "TextDataset::subset")};
  }
};

/// Tokenizes `texts`, encodes them with `vocab` to max_len, and pairs them with `labels`.
template <Floating T = float>
TextDataset<T> make_text_dataset(const std::vector<std::string>& texts, const std::vector<std::int64_t>& labels,
                                 const Vocabulary& vocab, std::int64_t max_len) {
  check(texts.size() == labels.size(), "make_text_dataset", texts.size(), " texts but ", labels.size(), " labels");
  Documents docs;
  docs.reserve(texts.size());
  for (const auto& t : texts) docs.push_back(tokenize(t));
  auto [ids, mask] = encode<T>(docs, vocab, max_len);
  auto y = IndexTensor::empty(Shape{static_cast<std::int64_t>(labels.size())});
  std::copy(labels.begin(), labels.end(), y.fresh_data());
  return {ids, mask, y};
}

}  // namespace metagrad::data
