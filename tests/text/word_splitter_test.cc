// Fused normalization + pre-tokenization: the words BERT sees.
#include <gtest/gtest.h>

#include "text/word_splitter.h"

namespace bert::text {
namespace {

using V = std::vector<std::string>;

V words(std::string_view s, CaseMode m = CaseMode::kUncased) { return WordSplitter(options_for(m)).split(s); }

TEST(WordSplitter, SplitsWhitespaceAndIsolatesPunctuation) {
  EXPECT_EQ(words("Hello, world! it's 3.14"), (V{"hello", ",", "world", "!", "it", "'", "s", "3", ".", "14"}));
  EXPECT_EQ(words("a--b"), (V{"a", "-", "-", "b"}));
  EXPECT_EQ(words("¿Qué?"), (V{"¿", "que", "?"}));
  EXPECT_EQ(words("5€ $5"), (V{"5€", "$", "5"}));  // € is a symbol (Sc), not punctuation
}

TEST(WordSplitter, CjkEmojiAndControls) {
  EXPECT_EQ(words("我爱abc北京"), (V{"我", "爱", "abc", "北", "京"}));
  EXPECT_EQ(words("日本語のテキスト"), (V{"日", "本", "語", "のテキスト"}));  // kana are not isolated
  EXPECT_EQ(words("hi😀there"), (V{"hi😀there"}));
  EXPECT_EQ(words("zero\u200bwidth"), (V{"zerowidth"}));  // ZWSP is Cf: removed, not a split
  EXPECT_EQ(words("a\u2028b\u0085c"), (V{"a", "bc"}));  // LS is whitespace; NEL is Cc: dropped
}

TEST(WordSplitter, EmptyAndBlankInput) {
  EXPECT_TRUE(words("").empty());
  EXPECT_TRUE(words(" \t\u3000 ").empty());
  EXPECT_TRUE(words(std::string("\0\0", 2)).empty());
}

TEST(WordSplitter, CountsInvalidUtf8) {
  WordSplitter s(options_for(CaseMode::kCased));
  std::string scratch;
  Utf8Issues issues;
  V got;
  s.split("ok \xff\xfe bad\xc3", scratch, [&](std::string_view w) { got.emplace_back(w); }, &issues);
  EXPECT_EQ(got, (V{"ok", "bad"}));
  EXPECT_EQ(issues.invalid_sequences, 3u);
  EXPECT_EQ(issues.first_invalid_offset, 3u);
}

TEST(WordSplitter, VeryLongWordStaysOneWord) {
  const std::string w(5000, 'x');
  EXPECT_EQ(words(w), (V{w}));
}

TEST(WordSplitter, MatchesNormalizeThenSplit) {
  // The fused path must agree with normalize() followed by splitting, on mixed input.
  const std::string text = "Żółć, ŚWIĘTY Łukasz! 東京 Straße\tİ\u0301 😀 a\u200bb ½ ① Ａｌｐｈａ";
  for (CaseMode m : {CaseMode::kUncased, CaseMode::kCased, CaseMode::kLowercase}) {
    const std::string n = normalize(text, options_for(m));
    NormalizerOptions raw = options_for(m);
    raw.lowercase = raw.strip_accents = false;
    EXPECT_EQ(words(text, m), WordSplitter(raw).split(n));
  }
}

}  // namespace
}  // namespace bert::text
