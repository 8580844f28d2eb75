// BERT normalization (HF BertNormalizer semantics) and the case modes; see word_splitter.cc for the
// per-character steps shared with pre-tokenization.
#include "text/normalizer.h"

#include "text/unicode.h"
#include "text/word_splitter.h"
#include "util/error.h"

namespace bert::text {

NormalizerOptions options_for(CaseMode mode) {
  NormalizerOptions o;
  o.lowercase = mode != CaseMode::kCased;
  o.strip_accents = mode == CaseMode::kUncased;
  return o;
}

CaseMode parse_case_mode(std::string_view name) {
  if (name == "uncased") return CaseMode::kUncased;
  if (name == "cased") return CaseMode::kCased;
  if (name == "lowercase") return CaseMode::kLowercase;
  throw util::usage_error("unknown mode \"" + std::string(name) +
                          "\"; choose uncased (lowercase + strip accents), cased (keep case and "
                          "accents) or lowercase (lowercase, keep accents)");
}

std::string normalize(std::string_view text, const NormalizerOptions& options) {
  const WordSplitter splitter(options);
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  char32_t buf[16];
  for (size_t i = 0; i < text.size();) {
    char32_t c;
    bool valid;
    i += decode_utf8(p + i, text.size() - i, &c, &valid);
    bool isolated = false;
    const int n = splitter.normalize_char(c, buf, &isolated);
    if (isolated) out.push_back(' ');
    for (int k = 0; k < n; ++k) append_utf8(out, buf[k]);
    if (isolated) out.push_back(' ');
  }
  return out;
}

}  // namespace bert::text
