// The cases of Google BERT's own tokenization_test.py (google-research/bert), on its vocabulary
// ([UNK] [CLS] [SEP] want ##want ##ed wa un runn ##ing ,), which has no [PAD] or [MASK]: encoding
// must accept it as it is; with [PAD] and [MASK] appended it is also good for training.
#include <gtest/gtest.h>

#include <algorithm>

#include "text/unicode.h"
#include "util/error.h"
#include "wordpiece/tokenizer.h"

namespace bert::wordpiece {
namespace {

using V = std::vector<std::string>;
const V kGoogleVocab = {"[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing", ","};

std::shared_ptr<const Vocab> vocab(V tokens, text::CaseMode mode = text::CaseMode::kUncased) {
  TokenizerConfig cfg;
  cfg.normalizer = text::options_for(mode);
  return std::make_shared<Vocab>(std::move(tokens), cfg, "tokenization_test vocab");
}

V with_pad_and_mask() {
  V v = kGoogleVocab;
  v.push_back("[PAD]");
  v.push_back("[MASK]");
  return v;
}

// Every case runs on the vocabulary as Google wrote it and with [PAD] [MASK] appended.
class GoogleTokenizationTest : public ::testing::TestWithParam<bool> {
 protected:
  V tokens() const { return GetParam() ? with_pad_and_mask() : kGoogleVocab; }
};

TEST_P(GoogleTokenizationTest, FullTokenizer) {
  Tokenizer tok(vocab(tokens()));
  EXPECT_EQ(tok.encode_tokens("UNwant\u00E9d,running"), (V{"un", "##want", "##ed", ",", "runn", "##ing"}));
  EXPECT_EQ(tok.encode_ids("UNwant\u00E9d,running"), (std::vector<int32_t>{7, 4, 5, 10, 8, 9}));
}

TEST_P(GoogleTokenizationTest, ChineseCharactersAreSplitApart) {
  // BasicTokenizer: "ah\u535A\u63A8zz" -> ah 博 推 zz; the WordPiece step then makes the unknown ones [UNK].
  Tokenizer tok(vocab(tokens()));
  EXPECT_EQ(tok.encode_tokens("ah\u535A\u63A8zz"), (V{"[UNK]", "[UNK]", "[UNK]", "[UNK]"}));
  Tokenizer known(vocab({"[UNK]", "ah", "\u535A", "\u63A8", "zz"}));
  EXPECT_EQ(known.encode_tokens("ah\u535A\u63A8zz"), (V{"ah", "\u535A", "\u63A8", "zz"}));
}

TEST_P(GoogleTokenizationTest, BasicTokenizerLowerAndNoLower) {
  V words = tokens();
  for (const char* w : {"hello", "!", "how", "are", "you", "?", "HeLLo", "Are", "yoU"}) words.push_back(w);
  Tokenizer lower(vocab(words));
  EXPECT_EQ(lower.encode_tokens(" \tHeLLo!how  \n Are yoU?  "), (V{"hello", "!", "how", "are", "you", "?"}));
  EXPECT_EQ(lower.encode_tokens("H\u00E9llo"), (V{"hello"}));
  Tokenizer cased(vocab(words, text::CaseMode::kCased));
  EXPECT_EQ(cased.encode_tokens(" \tHeLLo!how  \n Are yoU?  "), (V{"HeLLo", "!", "how", "Are", "yoU", "?"}));
}

TEST_P(GoogleTokenizationTest, WordpieceTokenizer) {
  V t = tokens();
  t.erase(std::find(t.begin(), t.end(), ","));  // test_wordpiece_tokenizer's vocabulary has no ","
  Tokenizer tok(vocab(t));
  EXPECT_EQ(tok.encode_tokens(""), V{});
  EXPECT_EQ(tok.encode_tokens("unwanted running"), (V{"un", "##want", "##ed", "runn", "##ing"}));
  EXPECT_EQ(tok.encode_tokens("unwantedX running"), (V{"[UNK]", "runn", "##ing"}));
  EXPECT_EQ(tok.encode_ids("unwanted running"), (std::vector<int32_t>{7, 4, 5, 8, 9}));  // convert_tokens_to_ids
}

TEST_P(GoogleTokenizationTest, SequenceTokensOnlyWithPadAndMask) {
  const auto v = vocab(tokens());
  if (GetParam()) {
    EXPECT_NO_THROW(v->require_sequence_tokens("bert-train"));
  } else {
    EXPECT_THROW(v->require_sequence_tokens("bert-train"), util::Error);
  }
}

INSTANTIATE_TEST_SUITE_P(AsWrittenAndWithPadMask, GoogleTokenizationTest, ::testing::Bool());

TEST(GoogleTokenization, CharacterClasses) {
  for (char32_t c : {U' ', U'\t', U'\r', U'\n', U'\u00A0'}) EXPECT_TRUE(text::is_whitespace(c)) << int(c);
  for (char32_t c : {U'A', U'-'}) EXPECT_FALSE(text::is_whitespace(c)) << int(c);
  EXPECT_TRUE(text::is_control(U'\u0005'));
  for (char32_t c : {U'A', U' ', U'\t', U'\r', U'\U0001F4A9'}) EXPECT_FALSE(text::is_control(c)) << int(c);
  for (char32_t c : {U'-', U'$', U'`', U'.'}) EXPECT_TRUE(text::is_punctuation(c)) << int(c);
  for (char32_t c : {U'A', U' '}) EXPECT_FALSE(text::is_punctuation(c)) << int(c);
}

}  // namespace
}  // namespace bert::wordpiece
