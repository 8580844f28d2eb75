// WordPiece encoding (greedy longest match, [UNK] rules, multilingual input), batch encoding and
// decoding, on a hand-written vocabulary whose expected splits are known; the linear-time matcher
// against a plain greedy longest-match-first reference on random and pathological vocabularies.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "util/error.h"
#include "wordpiece/tokenizer.h"

namespace bert::wordpiece {
namespace {

using V = std::vector<std::string>;

std::shared_ptr<const Vocab> small_vocab(text::CaseMode mode = text::CaseMode::kUncased) {
  V tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "##a", "##ff",
              "a", "b", "##b", "zoł", "##c", "żół", "##ć", "straße", "我", ",", "!", "'", "s", "it",
              "hello", "##llo", "he", "x", "##x", "😀", "i", "##̇", "##s", "##t", "##a", "##n", "##b", "##u", "##l"};
  // De-duplicate while keeping order (the list above repeats a few "##" pieces on purpose).
  V uniq;
  for (auto& t : tokens) {
    if (std::find(uniq.begin(), uniq.end(), t) == uniq.end()) uniq.push_back(t);
  }
  TokenizerConfig cfg;
  cfg.normalizer = text::options_for(mode);
  cfg.max_input_chars_per_word = 20;
  return std::make_shared<Vocab>(uniq, cfg);
}

TEST(Tokenizer, GreedyLongestMatchFirst) {
  Tokenizer tok(small_vocab());
  EXPECT_EQ(tok.encode_tokens("unaffable"), (V{"un", "##aff", "##able"}));
  EXPECT_EQ(tok.encode_tokens("UNAFFABLE!"), (V{"un", "##aff", "##able", "!"}));
  EXPECT_EQ(tok.encode_tokens("hello, it's"), (V{"hello", ",", "it", "'", "s"}));
  EXPECT_EQ(tok.encode_tokens("abb"), (V{"a", "##b", "##b"}));
}

TEST(Tokenizer, UnsplittableAndTooLongWordsBecomeUnk) {
  Tokenizer tok(small_vocab());
  EXPECT_EQ(tok.encode_tokens("aq b"), (V{"[UNK]", "b"}));  // q has no piece: the whole word is [UNK]
  V twenty{"x"};
  twenty.insert(twenty.end(), 19, "##x");
  EXPECT_EQ(tok.encode_tokens(std::string(20, 'x')), twenty);
  EXPECT_EQ(tok.encode_tokens(std::string(21, 'x')), (V{"[UNK]"}));  // > max_input_chars_per_word
  // Counted in characters, not bytes: 20 two-byte characters still fit.
  std::string wide;
  for (int i = 0; i < 20; ++i) wide += "ł";
  EXPECT_EQ(tok.encode_tokens(wide), (V{"[UNK]"}));     // unsplittable, but not for its length
  EXPECT_EQ(tok.encode_tokens(wide + "ł").size(), 1u);
}

TEST(Tokenizer, ModesMultilingualAndEmoji) {
  Tokenizer uncased(small_vocab(text::CaseMode::kUncased));
  Tokenizer lower(small_vocab(text::CaseMode::kLowercase));
  EXPECT_EQ(uncased.encode_tokens("Żółć"), (V{"zoł", "##c"}));
  EXPECT_EQ(lower.encode_tokens("Żółć"), (V{"żół", "##ć"}));
  EXPECT_EQ(uncased.encode_tokens("STRASSE Straße"), (V{"[UNK]", "straße"}));
  EXPECT_EQ(uncased.encode_tokens("我😀"), (V{"我", "😀"}));
  EXPECT_EQ(lower.encode_tokens("İst"), (V{"i", "##̇", "##s", "##t"}));
  EXPECT_TRUE(uncased.encode_tokens("").empty());
  EXPECT_TRUE(uncased.encode_tokens("\u200b \t").empty());
}

TEST(Tokenizer, BatchEqualsSequentialForAnyThreadCount) {
  Tokenizer tok(small_vocab());
  std::vector<std::string> texts;
  for (int i = 0; i < 1000; ++i) texts.push_back(i % 3 ? "unaffable hello!" : "Żółć aq it's " + std::to_string(i));
  const auto one = tok.encode_batch(texts, 1);
  const auto four = tok.encode_batch(texts, 4);
  ASSERT_EQ(one.size(), texts.size());
  EXPECT_EQ(one, four);
  for (size_t i = 0; i < texts.size(); i += 97) EXPECT_EQ(one[i], tok.encode_ids(texts[i]));
}

TEST(Tokenizer, DecodeGluesPiecesAndCleansSpaces) {
  auto vocab = small_vocab();
  Tokenizer tok(vocab);
  auto ids = tok.encode_ids("unaffable hello, it's!");
  ids.insert(ids.begin(), vocab->cls_id());
  ids.push_back(vocab->sep_id());
  // HF's decoder cleans each token separately, so " ' " never forms between "it" "'" "s".
  EXPECT_EQ(tok.decode(ids), "unaffable hello, it ' s!");
  EXPECT_EQ(tok.decode(ids, false), "[CLS] unaffable hello, it ' s! [SEP]");
  EXPECT_THROW(tok.decode({vocab->size()}), util::Error);
}

TEST(Tokenizer, WorksWithoutContinuationPieces) {
  TokenizerConfig cfg;
  auto vocab = std::make_shared<Vocab>(V{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ab", "a"}, cfg);
  Tokenizer tok(vocab);
  EXPECT_EQ(tok.encode_tokens("ab a abc"), (V{"ab", "a", "[UNK]"}));
}

// The textbook (HF) WordPiece loop over characters: at each start take the longest vocab entry,
// "##"-prefixed after the first piece; no entry, or more than max_chars characters -> [UNK].
V reference_wordpiece(const std::string& word, const std::set<std::string>& vocab, size_t max_chars) {
  V chars;
  for (size_t i = 0; i < word.size();) {
    const auto lead = static_cast<uint8_t>(word[i]);
    const size_t len = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    chars.push_back(word.substr(i, len));
    i += len;
  }
  if (chars.size() > max_chars) return {"[UNK]"};
  V out;
  for (size_t start = 0; start < chars.size();) {
    size_t end = chars.size();
    std::string piece;
    for (; end > start; --end) {
      piece = start > 0 ? "##" : "";
      for (size_t k = start; k < end; ++k) piece += chars[k];
      if (vocab.count(piece) != 0) break;
    }
    if (end == start) return {"[UNK]"};
    out.push_back(piece);
    start = end;
  }
  return out;
}

std::shared_ptr<const Vocab> vocab_of(const std::set<std::string>& tokens, int max_chars) {
  V list = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (const auto& t : tokens) {
    if (std::find(list.begin(), list.end(), t) == list.end()) list.push_back(t);
  }
  TokenizerConfig cfg;
  cfg.normalizer = text::options_for(text::CaseMode::kCased);  // words reach the matcher unchanged
  cfg.max_input_chars_per_word = max_chars;
  return std::make_shared<Vocab>(list, cfg);
}

TEST(Tokenizer, MatchesReferenceGreedyOnRandomVocabularies) {
  // Small alphabets (1-, 2- and 3-byte characters) make long partial matches, failure chains and
  // [UNK] words common. Tokens ending inside a character ("a\xC5") must never match, as in HF.
  const V pool = {"a", "b", "c", "ł", "ก"};
  std::mt19937_64 rng(20210101);
  auto uniform = [&](size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(rng); };
  size_t words = 0, unk_words = 0, multi_piece_words = 0;
  for (int round = 0; round < 3000; ++round) {
    V alphabet(pool.begin(), pool.begin() + static_cast<long>(uniform(1, pool.size())));
    std::shuffle(alphabet.begin(), alphabet.end(), rng);
    alphabet.resize(uniform(1, alphabet.size()));
    auto random_string = [&](size_t max_len) {
      std::string s;
      for (size_t k = uniform(1, max_len); k > 0; --k) s += alphabet[uniform(0, alphabet.size() - 1)];
      return s;
    };
    std::set<std::string> tokens;
    for (size_t k = uniform(1, 40); k > 0; --k) {
      std::string t = random_string(uniform(1, 3) == 1 ? 10 : 4);
      if (uniform(0, 19) == 0) t += "\xC5";  // a character cut in half
      tokens.insert(uniform(0, 1) ? "##" + t : t);
    }
    const int max_chars = uniform(0, 3) == 0 ? static_cast<int>(uniform(1, 12)) : 100;
    auto vocab = vocab_of(tokens, max_chars);
    std::set<std::string> in_vocab(vocab->tokens().begin(), vocab->tokens().end());
    Tokenizer tok(vocab);
    std::string textline;
    V expected;
    for (size_t k = uniform(1, 8); k > 0; --k) {
      const std::string word = random_string(16);
      const V pieces = reference_wordpiece(word, in_vocab, static_cast<size_t>(max_chars));
      ++words;
      unk_words += pieces == V{"[UNK]"};
      multi_piece_words += pieces.size() > 1;
      textline += word + " ";
      expected.insert(expected.end(), pieces.begin(), pieces.end());
    }
    ASSERT_EQ(tok.encode_tokens(textline), expected) << "round " << round << ": " << textline;
  }
  // The generator must keep producing both outcomes, or the comparison proves little.
  EXPECT_GT(unk_words, words / 10);
  EXPECT_GT(multi_piece_words, words / 10);
}

TEST(Tokenizer, PathologicalRunsMatchReference) {
  // "a", "##a", "##a...ab" (runs up to 99): every piece walks far down a run it cannot finish.
  // With "##a", "##aa", ... instead, the longest run wins.
  for (bool with_b : {true, false}) {
    std::set<std::string> tokens = {"a", "b"};
    for (int k = 1; k < 100; ++k) {
      tokens.insert("##" + std::string(static_cast<size_t>(k), 'a') + (with_b ? "b" : ""));
    }
    tokens.insert("##a");
    auto vocab = vocab_of(tokens, 100);
    std::set<std::string> in_vocab(vocab->tokens().begin(), vocab->tokens().end());
    Tokenizer tok(vocab);
    for (size_t n = 1; n <= 101; ++n) {
      for (const std::string& word : {std::string(n, 'a'), std::string(n, 'a') + "b"}) {
        ASSERT_EQ(tok.encode_tokens(word), reference_wordpiece(word, in_vocab, 100)) << word;
      }
    }
    EXPECT_EQ(tok.encode_tokens(std::string(100, 'a')).size(), with_b ? 100u : 2u);
  }
}

TEST(Tokenizer, PathologicalRunsTakeTimeLinearInTheWord) {
  // Word a^n against {"a", "##a", "##a^L b"}: matching one piece at a time walks L bytes per
  // piece (n * L in all); LinMaxMatch's failure links make it n whatever L. Compare L = 64 with
  // L = 2048 (32x the work for a per-piece walk): the time must not follow L.
  constexpr size_t kN = 200000;
  auto seconds_for = [&](size_t run) {
    auto vocab = vocab_of({"a", "##a", "##" + std::string(run, 'a') + "b"}, 1 << 30);
    Tokenizer tok(vocab);
    const std::string word(kN, 'a');
    double best = 1e9;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto ids = tok.encode_ids(word);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      EXPECT_EQ(ids.size(), kN);
      EXPECT_EQ(ids.back(), vocab->id("##a"));
    }
    return best;
  };
  const double short_run = seconds_for(64), long_run = seconds_for(2048);
  EXPECT_LT(long_run, 8 * short_run + 0.002) << "L=64: " << short_run << " s, L=2048: " << long_run << " s";
}

}  // namespace
}  // namespace bert::wordpiece
