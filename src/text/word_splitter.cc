// The per-character normalization steps, in HF BertNormalizer's order: clean text, CJK isolation,
// accent stripping (NFD, drop Mn), lowercase; and the ASCII table derived from them.
#include "text/word_splitter.h"

namespace bert::text {

WordSplitter::WordSplitter(const NormalizerOptions& options) : options_(options) {
  // The table is computed by the general path, so the fast path cannot disagree with it.
  for (int b = 0; b < 128; ++b) {
    char32_t buf[16];
    bool isolated = false;
    const int n = normalize_char(static_cast<char32_t>(b), buf, &isolated);
    if (n == 0) {
      ascii_kind_[b] = kDrop;
      continue;
    }
    ascii_kind_[b] = kind_of(buf[0]);
    ascii_char_[b] = static_cast<char>(buf[0]);
  }
}

int WordSplitter::normalize_char(char32_t c, char32_t* out, bool* isolated) const {
  *isolated = false;
  if (options_.clean_text) {
    if (c == 0 || c == kReplacementChar || is_control(c)) return 0;
    if (is_whitespace(c)) c = ' ';
  }
  if (options_.handle_chinese_chars && is_cjk_ideograph(c)) *isolated = true;
  int n = 1;
  out[0] = c;
  if (options_.strip_accents && c >= 0x80) {
    char32_t tmp[16];
    const int m = decompose(c, tmp, 16);
    n = 0;
    for (int k = 0; k < m; ++k) {
      if (!is_nonspacing_mark(tmp[k])) out[n++] = tmp[k];
    }
  }
  if (options_.lowercase) {
    char32_t tmp[16];
    int m = 0;
    for (int k = 0; k < n; ++k) m += to_lowercase(out[k], tmp + m);
    for (int k = 0; k < m; ++k) out[k] = tmp[k];
    n = m;
  }
  return n;
}

WordSplitter::Kind WordSplitter::kind_of(char32_t c) {
  if (is_whitespace(c)) return kSpace;
  if (is_punctuation(c)) return kPunct;
  return kWordChar;
}

std::vector<std::string> WordSplitter::split(std::string_view text) const {
  std::vector<std::string> words;
  std::string scratch;
  split(text, scratch, [&](std::string_view w) { words.emplace_back(w); });
  return words;
}

}  // namespace bert::text
