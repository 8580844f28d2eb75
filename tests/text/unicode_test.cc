// UTF-8 decoding (including invalid input) and the Unicode classes BERT uses.
#include <gtest/gtest.h>

#include "text/unicode.h"

namespace bert::text {
namespace {

std::pair<char32_t, size_t> dec(std::string_view s, bool* valid) {
  char32_t c;
  size_t n = decode_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &c, valid);
  return {c, n};
}

TEST(Utf8, DecodesValidSequences) {
  bool v;
  EXPECT_EQ(dec("A", &v), std::make_pair(char32_t{'A'}, size_t{1}));
  EXPECT_EQ(dec("ż", &v), std::make_pair(char32_t{0x17C}, size_t{2}));
  EXPECT_EQ(dec("我", &v), std::make_pair(char32_t{0x6211}, size_t{3}));
  EXPECT_EQ(dec("😀", &v), std::make_pair(char32_t{0x1F600}, size_t{4}));
  EXPECT_TRUE(v);
}

TEST(Utf8, ReplacesInvalidWithMaximalSubparts) {
  bool v;
  EXPECT_EQ(dec("\xff", &v), std::make_pair(kReplacementChar, size_t{1}));
  EXPECT_FALSE(v);
  EXPECT_EQ(dec("\xc0\xaf", &v).second, 1u);          // overlong lead byte
  EXPECT_EQ(dec("\xe2\x82", &v).second, 2u);          // truncated 3-byte sequence
  EXPECT_EQ(dec("\xed\xa0\x80", &v).second, 1u);      // surrogate
  EXPECT_EQ(dec("\xf4\x90\x80\x80", &v).second, 1u);  // > U+10FFFF
  EXPECT_EQ(dec("\x80", &v).second, 1u);              // stray continuation
  EXPECT_FALSE(v);
}

TEST(Utf8, RoundTripsAndCounts) {
  std::string s;
  for (char32_t c : {U'a', U'ł', U'€', U'😀'}) append_utf8(s, c);
  EXPECT_EQ(s, "ał€😀");
  EXPECT_EQ(count_chars(s), 4u);
}

TEST(Utf8, PrefixCountsCodePointsAndNeverCutsOne) {
  const std::string s = "żółw 🐢!";  // 2 + 2 + 2 + 1 + 1 + 4 + 1 bytes
  EXPECT_EQ(utf8_prefix(s, 0), "");
  EXPECT_EQ(utf8_prefix(s, 1), "ż");
  EXPECT_EQ(utf8_prefix(s, 3), "żół");
  EXPECT_EQ(utf8_prefix(s, 6), "żółw 🐢");
  EXPECT_EQ(utf8_prefix(s, 7), s);
  EXPECT_EQ(utf8_prefix(s, 100), s);
}

TEST(Classes, WhitespaceControlPunctuation) {
  EXPECT_TRUE(is_whitespace(' '));
  EXPECT_TRUE(is_whitespace(0x3000));  // ideographic space (Zs)
  EXPECT_TRUE(is_whitespace(0x2028));  // line separator (Zl)
  EXPECT_TRUE(is_whitespace(0x0B));
  EXPECT_FALSE(is_whitespace(0x200B));  // zero-width space is Cf, not White_Space
  EXPECT_TRUE(is_control(0x200B));
  EXPECT_TRUE(is_control(0x07));
  EXPECT_TRUE(is_control(0xE000));  // private use (Co)
  EXPECT_FALSE(is_control('\n'));
  EXPECT_TRUE(is_punctuation('$'));  // ASCII symbol counted as punctuation, as in BERT
  EXPECT_TRUE(is_punctuation('`'));
  EXPECT_TRUE(is_punctuation(0x3002));  // ideographic full stop
  EXPECT_TRUE(is_punctuation(0x00BF));  // inverted question mark
  EXPECT_FALSE(is_punctuation(0x20AC));  // euro sign is Sc: not split off
  EXPECT_FALSE(is_punctuation('a'));
  EXPECT_TRUE(is_cjk_ideograph(0x6211));
  EXPECT_FALSE(is_cjk_ideograph(0xD55C));  // Hangul is not isolated
  EXPECT_TRUE(is_nonspacing_mark(0x0301));
}

TEST(CaseAndDecomposition, MatchRust) {
  char32_t out[16];
  ASSERT_EQ(to_lowercase(0x130, out), 2);  // İ -> i + combining dot above
  EXPECT_EQ(out[0], U'i');
  EXPECT_EQ(out[1], char32_t{0x307});
  ASSERT_EQ(to_lowercase(0x3A3, out), 1);  // Σ -> σ (no final-sigma context per character)
  EXPECT_EQ(out[0], char32_t{0x3C3});
  ASSERT_EQ(decompose(0x1EC7, out, 16), 3);  // ệ -> e + dot below + circumflex (canonical order)
  EXPECT_EQ(out[0], U'e');
  EXPECT_EQ(out[1], char32_t{0x323});
  EXPECT_EQ(out[2], char32_t{0x302});
  EXPECT_EQ(decompose(0x142, out, 16), 1);  // ł has no decomposition
}

}  // namespace
}  // namespace bert::text
