// Unicode character classes and UTF-8 coding as Hugging Face tokenizers' BERT components see them.
// Categories, decompositions and case maps come from utf8proc; nothing here is a hand-typed table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bert::text {

constexpr char32_t kReplacementChar = 0xFFFD;

// Decodes one UTF-8 character at `p` (`n` > 0 bytes available) into `*cp` and returns the bytes
// consumed. Invalid input (stray continuation, overlong form, surrogate, > U+10FFFF, truncated
// sequence) yields U+FFFD and consumes the maximal invalid subpart (at least one byte), the same
// policy as Python's errors="replace"; `*valid` is set to false then.
size_t decode_utf8(const uint8_t* p, size_t n, char32_t* cp, bool* valid);
// Appends the UTF-8 encoding of `cp`.
void append_utf8(std::string& out, char32_t cp);
// Number of code points in valid UTF-8 (counts lead bytes).
size_t count_chars(std::string_view s);
// The first `chars` code points of valid UTF-8 (all of it when shorter); never cuts inside one.
std::string_view utf8_prefix(std::string_view s, size_t chars);

// Rust char::is_whitespace (the White_Space property): Zs, Zl, Zp, U+0009..U+000D and U+0085.
bool is_whitespace(char32_t c);
// HF BertNormalizer's is_control as it behaves: categories Cc Cf Co Cs, except \t \n \r (treated as
// spaces) and a few format characters newer than HF's tables; unassigned (Cn) code points are kept.
bool is_control(char32_t c);
// HF is_bert_punc: ASCII 33-47, 58-64, 91-96, 123-126, or any Unicode P* category.
bool is_punctuation(char32_t c);
// The CJK ideograph blocks Google BERT and HF surround with spaces (not Hangul, kana, etc.).
bool is_cjk_ideograph(char32_t c);
// Category Mn: what accent stripping drops after NFD.
bool is_nonspacing_mark(char32_t c);

// Canonical decomposition (NFD of a single character, recursively applied) into `out` (capacity
// `cap`); returns the number of code points written.
int decompose(char32_t c, char32_t* out, int cap);
// Rust char::to_lowercase: simple lowercase mapping, except U+0130 (I with dot above) which becomes
// "i" + U+0307. Writes 1 or 2 code points to `out`, returns the count.
int to_lowercase(char32_t c, char32_t* out);

}  // namespace bert::text
