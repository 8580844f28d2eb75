// BERT normalization in the three modes, on the languages and oddities users feed it.
#include <gtest/gtest.h>

#include "text/normalizer.h"
#include "util/error.h"

namespace bert::text {
namespace {

std::string norm(std::string_view s, CaseMode m) { return normalize(s, options_for(m)); }

TEST(Normalizer, ModesOnPolish) {
  EXPECT_EQ(norm("Żółć", CaseMode::kUncased), "zołc");  // ł has no decomposition: it stays
  EXPECT_EQ(norm("Żółć", CaseMode::kLowercase), "żółć");
  EXPECT_EQ(norm("Żółć", CaseMode::kCased), "Żółć");
}

TEST(Normalizer, GermanFrenchVietnamese) {
  EXPECT_EQ(norm("Straße ÜBER", CaseMode::kUncased), "straße uber");
  EXPECT_EQ(norm("Noël Œuvre", CaseMode::kUncased), "noel œuvre");
  EXPECT_EQ(norm("Tiếng Việt", CaseMode::kUncased), "tieng viet");
  EXPECT_EQ(norm("Tiếng Việt", CaseMode::kLowercase), "tiếng việt");
  EXPECT_EQ(norm("Đặng", CaseMode::kUncased), "đang");  // Đ is a letter, not D + accent
}

TEST(Normalizer, CombiningSequencesAndSpecialCasing) {
  EXPECT_EQ(norm("cafe\u0301", CaseMode::kUncased), "cafe");
  EXPECT_EQ(norm("cafe\u0301", CaseMode::kLowercase), "cafe\u0301");  // no NFC/NFD without stripping
  EXPECT_EQ(norm("İstanbul", CaseMode::kLowercase), "i\u0307stanbul");  // Rust char::to_lowercase
  EXPECT_EQ(norm("İstanbul", CaseMode::kUncased), "istanbul");
  EXPECT_EQ(norm("ΟΔΥΣΣΕΥΣ", CaseMode::kLowercase), "οδυσσευσ");  // per-character: no final sigma
}

TEST(Normalizer, CleansControlAndWhitespace) {
  EXPECT_EQ(norm(std::string("a\0b", 3), CaseMode::kCased), "ab");
  EXPECT_EQ(norm("a\u200bb\ufeffc\u00add", CaseMode::kCased), "abcd");  // Cf removed
  EXPECT_EQ(norm("a\tb\nc\u3000d\u00a0e", CaseMode::kCased), "a b c d e");
  EXPECT_EQ(norm("a\x0b" "b", CaseMode::kCased), "ab");  // VT is a control char in HF: dropped
  EXPECT_EQ(norm("x\xff" "y", CaseMode::kCased), "xy");  // invalid byte -> U+FFFD -> dropped
  EXPECT_EQ(norm("", CaseMode::kCased), "");
}

TEST(Normalizer, SpacesAroundCjkOnly) {
  EXPECT_EQ(norm("我爱abc", CaseMode::kCased), " 我  爱 abc");
  EXPECT_EQ(norm("한국", CaseMode::kCased), "한국");
  EXPECT_EQ(norm("😀", CaseMode::kUncased), "😀");
}

TEST(Normalizer, ParsesModes) {
  EXPECT_EQ(parse_case_mode("lowercase"), CaseMode::kLowercase);
  EXPECT_THROW(parse_case_mode("Uncased"), util::Error);
  const auto o = options_for(CaseMode::kLowercase);
  EXPECT_TRUE(o.lowercase);
  EXPECT_FALSE(o.strip_accents);
}

}  // namespace
}  // namespace bert::text
