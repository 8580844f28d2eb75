// WordPiece encoding (greedy longest match, [UNK] rules, multilingual input), batch encoding and
// decoding, on a hand-written vocabulary whose expected splits are known.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace bert::wordpiece
