// Trainer: the BPE rule on a corpus small enough to check merges by hand, the wordpiece scores
// (likelihood gain against a brute-force reference, the ratio), held-out fertility of wordpiece
// against bpe, alphabet limits, specials/unused layout, determinism across thread counts, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>

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

TEST(Trainer, WordPieceRatioFavoursPairsOfRarerPartsAndGainWeighsFrequency) {
  TrainerOptions o;
  o.vocab_size = 5 + 5 + 2 + 1;  // specials, {a,b,c,d,e}, {##b,##e}, one merge
  o.min_frequency = 1;
  o.algorithm = Algorithm::kWordPieceRatio;
  TrainReport r;
  // ratio(a,##b) = 10/(10*12), ratio(c,##b) = 2/(2*12), ratio(d,##e) = 1/(1*1): the rare pair wins.
  const V v = learn_vocab(counts({{"ab", 10}, {"cb", 2}, {"de", 1}}), o, &r);
  ASSERT_EQ(v.size(), 13u);
  EXPECT_EQ(v.back(), "de");
  // N = 26: gain(a,##b) = 10 log(260/120) = 7.7 beats gain(d,##e) = 1 log(26) = 3.3.
  o.algorithm = Algorithm::kWordPiece;
  EXPECT_EQ(learn_vocab(counts({{"ab", 10}, {"cb", 2}, {"de", 1}}), o, &r).back(), "ab");
  o.algorithm = Algorithm::kBpe;
  const V b = learn_vocab(counts({{"ab", 10}, {"cb", 2}, {"de", 1}}), o, &r);
  EXPECT_EQ(b.back(), "ab");
  EXPECT_EQ(parse_algorithm("wordpiece-ratio"), Algorithm::kWordPieceRatio);
  EXPECT_THROW(parse_algorithm("ratio"), util::Error);
}

// A deterministic English-like text: Zipf-distributed stems of 1-3 syllables with inflections, and
// 4% rare names drawn from all letters (the singletons that pull the ratio score off course).
// mt19937's output is fixed by the standard, so the text is the same on every platform.
std::string synthetic_text(uint32_t seed, int words) {
  std::mt19937 stems_rng(7);  // the lexicon is shared by every sample
  const char* syl[] = {"ka", "to", "re", "mi", "san", "del", "or", "en", "tha", "wi", "lu", "ber",
                       "po", "ant", "is", "gra", "ne", "ous", "ly", "ch", "and", "ver", "im", "st"};
  std::vector<std::string> stems(3000);
  for (auto& st : stems) {
    const uint32_t n = 1 + stems_rng() % 3;
    for (uint32_t i = 0; i < n; ++i) st += syl[stems_rng() % 24];
  }
  const char* suffix[] = {"", "", "", "", "s", "ed", "ing", "er", "ly", "ness", "ment", "es"};
  const std::vector<std::string> letters = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l",
                                            "m", "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x",
                                            "y", "z", "q", "x", "z", "\xc3\xa9", "\xc3\xb8"};  // é, ø
  std::mt19937 rng(seed);
  auto uniform = [&] { return static_cast<double>(rng()) / 4294967296.0; };
  std::string text;
  for (int i = 0; i < words; ++i) {
    if (uniform() < 0.04) {
      const uint32_t n = 4 + rng() % 6;
      for (uint32_t k = 0; k < n; ++k) text += letters[rng() % letters.size()];
    } else {
      text += stems[static_cast<size_t>(std::pow(uniform(), 3.0) * 3000)];
      text += suffix[rng() % 12];
    }
    text += (i % 12 == 11) ? '\n' : ' ';
  }
  return text;
}

double fertility(const Vocab& vocab, const std::string& text) {
  const Tokenizer tok(std::make_shared<Vocab>(vocab));
  size_t tokens = 0, words = 0;
  for (const auto& t : tok.encode_tokens(text)) {
    ++tokens;
    if (t.rfind("##", 0) != 0) ++words;
  }
  return static_cast<double>(tokens) / static_cast<double>(words);
}

// The issue's target: at the same vocab size the default wordpiece rule tokenizes held-out text
// into no more pieces per word than bpe. The ratio rule, kept as an option, is far worse. Sizes are
// those of the regime the target is about (about the number of frequent word forms); far below it
// (1500 here, <= 4000 on the project corpus) the two are within about 0.5% and either may win.
TEST(Trainer, WordPieceHeldOutFertilityIsNoWorseThanBpe) {
  const fs::path dir = fs::temp_directory_path() / ("bert_fert_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  util::write_file_atomic(dir / "train.txt", synthetic_text(1, 150000));
  const std::string heldout = synthetic_text(2, 20000);
  for (int size : {3000, 5000}) {
    std::map<Algorithm, double> f;
    for (Algorithm a : {Algorithm::kWordPiece, Algorithm::kBpe, Algorithm::kWordPieceRatio}) {
      TrainerOptions o;
      o.vocab_size = size;
      o.algorithm = a;
      TrainReport r;
      const Vocab v = train_vocab({dir / "train.txt"}, o, &r);
      ASSERT_EQ(v.size(), size) << r.stop_reason;  // the comparison is at the same size
      f[a] = fertility(v, heldout);
    }
    std::cout << "vocab " << size << ": wordpiece " << f[Algorithm::kWordPiece] << ", bpe "
              << f[Algorithm::kBpe] << ", wordpiece-ratio " << f[Algorithm::kWordPieceRatio] << " tokens/word\n";
    EXPECT_LE(f[Algorithm::kWordPiece], f[Algorithm::kBpe]) << "vocab " << size;
    EXPECT_GT(f[Algorithm::kWordPieceRatio], f[Algorithm::kBpe]) << "vocab " << size;
  }
  fs::remove_all(dir);
}

// The incremental merger with lazily re-validated gains must pick exactly what recomputing every
// pair's gain from scratch picks. The text runs out of pairs seen twice before the target, so no
// token is pruned and the whole merge sequence is compared.
TEST(Trainer, WordPieceGainMatchesBruteForceReference) {
  std::map<std::string, uint64_t> freq;
  {
    const std::string text = synthetic_text(3, 3000);
    size_t i = 0;
    while (i < text.size()) {
      const size_t j = text.find_first_of(" \n", i);
      const std::string w = text.substr(i, j - i);
      if (!w.empty() && w.find('\xc3') == std::string::npos) ++freq[w];
      i = j == std::string::npos ? text.size() : j + 1;
    }
  }
  const WordCounts c = counts({freq.begin(), freq.end()});
  TrainerOptions o;
  TrainReport r;
  o.vocab_size = 1000000;
  const V fast = learn_vocab(c, o, &r);
  ASSERT_EQ(r.pruned, 0u);
  o.vocab_size = static_cast<int>(r.initial_vocab);
  V ref = learn_vocab(c, o, &r);  // specials and alphabet only

  std::map<std::string, int32_t> id;
  for (size_t k = 0; k < ref.size(); ++k) id[ref[k]] = static_cast<int32_t>(k);
  std::vector<std::pair<std::vector<int32_t>, int64_t>> words;
  for (const auto& [w, n] : c.words) {
    std::vector<int32_t> s;
    for (size_t k = 0; k < w.size(); ++k) s.push_back(id.at((k ? "##" : "") + w.substr(k, 1)));
    words.push_back({s, static_cast<int64_t>(n)});
  }
  for (;;) {
    std::map<std::pair<int32_t, int32_t>, int64_t> pair_count;
    std::map<int32_t, int64_t> sym;
    int64_t total = 0;
    for (const auto& [s, n] : words) {
      for (size_t k = 0; k < s.size(); ++k) {
        sym[s[k]] += n;
        total += n;
        if (k + 1 < s.size()) pair_count[{s[k], s[k + 1]}] += n;
      }
    }
    std::pair<int32_t, int32_t> best{-1, -1};
    double best_gain = 0;
    int64_t best_count = 0;
    for (const auto& [p, n] : pair_count) {  // map order = smaller ids first, HF's tie rule
      if (n < 2) continue;
      const double d = static_cast<double>(n);
      const double gain = d * std::log(d * static_cast<double>(total) /
                                       (static_cast<double>(sym[p.first]) * static_cast<double>(sym[p.second])));
      if (best.first < 0 || gain > best_gain || (gain == best_gain && n > best_count)) {
        best = p, best_gain = gain, best_count = n;
      }
    }
    if (best.first < 0) break;
    const std::string merged = ref[static_cast<size_t>(best.first)] + ref[static_cast<size_t>(best.second)].substr(2);
    if (!id.count(merged)) {
      id[merged] = static_cast<int32_t>(ref.size());
      ref.push_back(merged);
    }
    for (auto& [s, n] : words) {
      std::vector<int32_t> out;
      for (size_t k = 0; k < s.size(); ++k) {
        if (k + 1 < s.size() && s[k] == best.first && s[k + 1] == best.second) {
          out.push_back(id[merged]);
          ++k;
        } else {
          out.push_back(s[k]);
        }
      }
      s = out;
    }
  }
  EXPECT_GT(ref.size(), r.initial_vocab + 200);
  EXPECT_EQ(fast, ref);
}

// Under the wordpiece rule every merged token is picked by greedy longest match in some training
// word: intermediates left unused by longer merges give their slots to further merges.
TEST(Trainer, WordPieceKeepsOnlyMergedTokensThatTrainingWordsUse) {
  const fs::path dir = fs::temp_directory_path() / ("bert_prune_wp_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string text = synthetic_text(4, 60000);
  util::write_file_atomic(dir / "train.txt", text);
  TrainerOptions o;
  o.vocab_size = 2000;
  TrainReport r;
  const Vocab v = train_vocab({dir / "train.txt"}, o, &r);
  fs::remove_all(dir);
  ASSERT_EQ(v.size(), 2000);
  EXPECT_GT(r.pruned, 0u);
  std::set<std::string> used;
  for (const auto& t : Tokenizer(std::make_shared<Vocab>(v)).encode_tokens(text)) used.insert(t);
  for (size_t id = r.initial_vocab; id < v.tokens().size(); ++id) {
    EXPECT_EQ(used.count(v.tokens()[id]), 1u) << v.tokens()[id];
  }
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
  for (Algorithm alg : {Algorithm::kWordPiece, Algorithm::kWordPieceRatio, Algorithm::kBpe}) {
    TrainerOptions o;
    o.vocab_size = 3000;
    o.algorithm = alg;
    TrainReport r1, r2;
    o.threads = 1;
    const Vocab a = train_vocab({text}, o, &r1);
    o.threads = 3;
    const Vocab b = train_vocab({text}, o, &r2);
    EXPECT_EQ(a.tokens(), b.tokens());
    EXPECT_GT(a.size(), 800);  // the small text runs out of pairs seen twice before 3000
    EXPECT_LT(a.size(), 3000);
    EXPECT_EQ(r1.counts.total_words, r2.counts.total_words);
    EXPECT_GT(r1.counts.too_long_words, 0u);  // the test text has words over 100 characters
    // Words whose parts are all in the vocab are never [UNK].
    Tokenizer tok(std::make_shared<Vocab>(a));
    const auto polish = tok.encode_tokens("zażółć gęślą jaźń");
    ASSERT_FALSE(polish.empty());
    for (const auto& t : polish) EXPECT_NE(t, "[UNK]") << "zażółć gęślą jaźń";
    for (const auto& t : tok.encode_tokens("the quick brown fox")) EXPECT_NE(t, "[UNK]");
  }
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
