// Trainer: the BPE rule on a corpus small enough to check merges by hand, the wordpiece score,
// alphabet limits, specials/unused layout, determinism across thread counts, and its errors.
#include <gtest/gtest.h>

#include <fstream>

#include "util/atomic_file.h"
#include "util/error.h"
#include "wordpiece/tokenizer.h"
#include "wordpiece/trainer.h"

namespace bert::wordpiece {
namespace {
namespace fs = std::filesystem;
using V = std::vector<std::string>;

WordCounts counts(std::vector<std::pair<std::string, uint64_t>> words) {
  WordCounts c;
  c.words = std::move(words);
  std::sort(c.words.begin(), c.words.end());
  return c;
}

V tail(const V& v, size_t from) { return V(v.begin() + static_cast<long>(from), v.end()); }

TEST(Trainer, BpeMergesMostFrequentPairFirst) {
  TrainerOptions o;
  o.algorithm = Algorithm::kBpe;
  o.vocab_size = 5 + 3 + 2 + 2;  // specials, alphabet {a,b,c}, ##b ##c, two merges
  o.min_frequency = 1;
  TrainReport r;
  const V v = learn_vocab(counts({{"ab", 10}, {"abc", 4}, {"bc", 3}}), o, &r);
  EXPECT_EQ(V(v.begin(), v.begin() + 5), (V{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}));
  // (a,##b) occurs 14 times, then (ab,##c) 4 vs (b,##c) 3.
  EXPECT_EQ(tail(v, 5), (V{"a", "b", "c", "##b", "##c", "ab", "abc"}));
  EXPECT_EQ(r.alphabet_size, 3u);
  EXPECT_EQ(r.merges, 2u);
}

TEST(Trainer, WordPieceScoreFavoursPairsOfRarerParts) {
  TrainerOptions o;
  o.vocab_size = 5 + 5 + 2 + 1;  // specials, {a,b,c,d,e}, {##b,##e}, one merge
  o.min_frequency = 1;
  TrainReport r;
  // score(a,##b) = 10/(10*12), score(c,##b) = 2/(2*12), score(d,##e) = 1/(1*1): the rare pair wins.
  const V v = learn_vocab(counts({{"ab", 10}, {"cb", 2}, {"de", 1}}), o, &r);
  ASSERT_EQ(v.size(), 13u);
  EXPECT_EQ(v.back(), "de");
  o.algorithm = Algorithm::kBpe;
  const V b = learn_vocab(counts({{"ab", 10}, {"cb", 2}, {"de", 1}}), o, &r);
  EXPECT_EQ(b.back(), "ab");
}

TEST(Trainer, LimitAlphabetDropsRareCharactersAndUnusedSlotsFollowSpecials) {
  TrainerOptions o;
  o.vocab_size = 100;
  o.limit_alphabet = 2;
  o.unused = 3;
  TrainReport r;
  const V v = learn_vocab(counts({{"aab", 10}, {"q", 1}}), o, &r);
  EXPECT_EQ(v[5], "[unused0]");
  EXPECT_EQ(v[7], "[unused2]");
  EXPECT_EQ(v[8], "a");
  EXPECT_EQ(std::count(v.begin(), v.end(), "q"), 0);
  EXPECT_EQ(r.alphabet_dropped, 1u);
}

TEST(Trainer, TooSmallVocabSizeIsAUsageErrorNamingTheMinimum) {
  TrainerOptions o;
  o.vocab_size = 7;
  TrainReport r;
  try {
    learn_vocab(counts({{"abc", 3}}), o, &r);
    FAIL() << "expected an error";
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("--vocab-size 10 or more"), std::string::npos) << e.what();
  }
}

TEST(Trainer, OutputIsIdenticalForAnyThreadCountAndChunking) {
  const fs::path text = std::string(BERT_SOURCE_DIR) + "/data/testdata/multilingual.txt";
  TrainerOptions o;
  o.vocab_size = 3000;
  TrainReport r1, r2;
  o.threads = 1;
  const Vocab a = train_vocab({text}, o, &r1);
  o.threads = 3;
  const Vocab b = train_vocab({text}, o, &r2);
  EXPECT_EQ(a.tokens(), b.tokens());
  EXPECT_GT(a.size(), 1000);  // the small text runs out of pairs seen twice before 3000
  EXPECT_EQ(r1.counts.total_words, r2.counts.total_words);
  EXPECT_GT(r1.counts.too_long_words, 0u);  // the test text has words over 100 characters
  // Words whose parts are all in the vocab are never [UNK].
  Tokenizer tok(std::make_shared<Vocab>(a));
  EXPECT_EQ(tok.encode_tokens("zażółć gęślą jaźń").size() > 0, true);
  for (const auto& t : tok.encode_tokens("the quick brown fox")) EXPECT_NE(t, "[UNK]");
}

TEST(Trainer, MemoryBudgetPrunesRareWordsDeterministically) {
  const fs::path dir = fs::temp_directory_path() / ("bert_prune_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string text;
  for (int i = 0; i < 60000; ++i) text += "w" + std::to_string(i) + " common words again\n";
  util::write_file_atomic(dir / "t.txt", text);
  CountOptions co;
  co.memory_mb = 1;  // ~14k table entries: must prune the 60k singletons
  co.chunk_bytes = 64 * 1024;
  co.threads = 1;
  const WordCounts one = count_words({dir / "t.txt"}, co);
  co.threads = 2;
  const WordCounts two = count_words({dir / "t.txt"}, co);
  EXPECT_GT(one.prune_threshold, 0u);
  EXPECT_GT(one.pruned_distinct, 10000u);
  EXPECT_EQ(one.words, two.words);
  EXPECT_NE(std::find(one.words.begin(), one.words.end(), std::make_pair(std::string("common"), uint64_t{60000})),
            one.words.end());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bert::wordpiece
