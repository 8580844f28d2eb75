// BERT normalization, identical in effect to Hugging Face tokenizers' BertNormalizer: clean text
// (drop NUL, U+FFFD and control characters; whitespace -> ' '), spaces around CJK ideographs,
// optional lowercasing, optional accent stripping (NFD, drop combining marks).
#pragma once

#include <string>
#include <string_view>

namespace bert::text {

struct NormalizerOptions {
  bool clean_text = true;            // drop control chars, map whitespace to ' '
  bool handle_chinese_chars = true;  // surround CJK ideographs with spaces
  bool lowercase = true;             // Unicode lowercase
  bool strip_accents = true;         // NFD + drop Mn marks ("żółć" -> "zołc": l-stroke is no accent)
};

// The three modes users pick: uncased (lowercase + strip accents), cased, lowercase (keep accents).
enum class CaseMode { kUncased, kCased, kLowercase };
NormalizerOptions options_for(CaseMode mode);
// Parses "uncased" | "cased" | "lowercase"; throws Error(kUsage) listing the choices otherwise.
CaseMode parse_case_mode(std::string_view name);

// Normalizes one text. Invalid UTF-8 bytes are replaced by U+FFFD before cleaning (so dropped).
std::string normalize(std::string_view text, const NormalizerOptions& options);

}  // namespace bert::text
