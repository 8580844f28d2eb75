// Helpers for the data tests: small vocabularies built from token lists, synthetic shards, temp dirs.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/shard.h"
#include "util/rng.h"
#include "wordpiece/vocab.h"

namespace bert::data {
namespace fs = std::filesystem;
}

namespace bert::data::testing {

// [PAD] [UNK] [CLS] [SEP] [MASK] [unused0], then `words` plain tokens "w0".. and `pieces` "##p0"...
// Ids: specials 0..5, words 6.., pieces after the words.
inline std::shared_ptr<const wordpiece::Vocab> make_vocab(int words = 200, int pieces = 50) {
  std::vector<std::string> t = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]"};
  for (int i = 0; i < words; ++i) t.push_back("w" + std::to_string(i));
  for (int i = 0; i < pieces; ++i) t.push_back("##p" + std::to_string(i));
  return std::make_shared<const wordpiece::Vocab>(t, wordpiece::TokenizerConfig{}, "test-vocab");
}
inline constexpr int32_t kFirstWord = 6;

// A document is a list of sentences of token ids.
using Doc = std::vector<std::vector<int32_t>>;

// Random documents over the word ids of make_vocab(words): sentence lengths in [min_len, max_len],
// sentences per doc in [min_sents, max_sents].
inline std::vector<Doc> random_docs(uint64_t seed, int docs, int min_sents, int max_sents, int min_len,
                                    int max_len, int words = 200) {
  util::Rng rng(seed);
  std::vector<Doc> out(static_cast<size_t>(docs));
  for (auto& d : out) {
    int ns = min_sents + static_cast<int>(rng.uniform(static_cast<uint64_t>(max_sents - min_sents + 1)));
    for (int s = 0; s < ns; ++s) {
      int len = min_len + static_cast<int>(rng.uniform(static_cast<uint64_t>(max_len - min_len + 1)));
      std::vector<int32_t> sent;
      for (int i = 0; i < len; ++i) sent.push_back(kFirstWord + static_cast<int32_t>(rng.uniform(static_cast<uint64_t>(words))));
      d.push_back(std::move(sent));
    }
  }
  return out;
}

inline void write_shard(const fs::path& path, const wordpiece::Vocab& vocab, const std::vector<Doc>& docs) {
  ShardWriter w(path, vocab);
  for (const auto& d : docs) {
    for (const auto& s : d) w.add_sentence(s);
    w.end_document();
  }
  w.finish();
}

// A fresh directory under the build tree, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("bert_data_test_" + std::to_string(::getpid()) + "_" +
                                         std::string(info->test_suite_name()) + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

}  // namespace bert::data::testing
