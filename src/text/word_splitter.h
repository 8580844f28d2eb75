// Normalization fused with BERT pre-tokenization in one pass: yields the words HF's BertNormalizer
// followed by BertPreTokenizer would produce (whitespace removed, each punctuation character and each
// CJK ideograph its own word), without materializing the normalized text. This is the hot path of
// both the tokenizer and the trainer's word counting, so ASCII goes through a 128-entry table.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text/normalizer.h"
#include "text/unicode.h"

namespace bert::text {

// Invalid UTF-8 seen while splitting: count of replaced sequences and the first one's byte offset.
struct Utf8Issues {
  uint64_t invalid_sequences = 0;
  uint64_t first_invalid_offset = UINT64_MAX;  // relative to the text passed to split()
};

class WordSplitter {
 public:
  explicit WordSplitter(const NormalizerOptions& options);

  // Calls on_word(std::string_view word) for each word of `text`, in order. `word` is a scratch
  // buffer (reused across calls to avoid allocations); each view is valid only during its callback.
  // Invalid UTF-8 becomes U+FFFD (dropped when clean_text is on) and is counted in `issues`.
  template <typename OnWord>
  void split(std::string_view text, std::string& word, OnWord&& on_word,
             Utf8Issues* issues = nullptr) const;

  // Words of `text` as strings (convenience for tests and tools).
  std::vector<std::string> split(std::string_view text) const;

  const NormalizerOptions& options() const { return options_; }

  // How a normalized character takes part in pre-tokenization.
  enum Kind : uint8_t { kWordChar, kSpace, kPunct, kDrop };
  // Normalizes one code point (clean, CJK, NFD + drop Mn, lowercase, in HF's order) into `out`
  // (capacity >= 16). Returns the count; `*isolated` is set when the input is a CJK ideograph.
  int normalize_char(char32_t c, char32_t* out, bool* isolated) const;
  // Pre-tokenization class of a normalized character.
  static Kind kind_of(char32_t c);

 private:
  // Slow path for one non-ASCII character already decoded; appends to / flushes `word`.
  template <typename OnWord>
  void non_ascii(char32_t c, std::string& word, OnWord& on_word) const;

  NormalizerOptions options_;
  std::array<uint8_t, 128> ascii_kind_{};
  std::array<char, 128> ascii_char_{};
};

template <typename OnWord>
void WordSplitter::non_ascii(char32_t c, std::string& word, OnWord& on_word) const {
  char32_t buf[16];
  bool isolated = false;
  const int n = normalize_char(c, buf, &isolated);
  if (isolated && !word.empty()) {
    on_word(std::string_view(word));
    word.clear();
  }
  for (int k = 0; k < n; ++k) {
    switch (kind_of(buf[k])) {
      case kWordChar:
        append_utf8(word, buf[k]);
        break;
      case kSpace:
        if (!word.empty()) on_word(std::string_view(word));
        word.clear();
        break;
      case kPunct:
        if (!word.empty()) on_word(std::string_view(word));
        word.clear();
        append_utf8(word, buf[k]);
        on_word(std::string_view(word));
        word.clear();
        break;
      case kDrop:
        break;
    }
  }
  if (isolated && !word.empty()) {
    on_word(std::string_view(word));
    word.clear();
  }
}

template <typename OnWord>
void WordSplitter::split(std::string_view text, std::string& word, OnWord&& on_word,
                         Utf8Issues* issues) const {
  word.clear();
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t b = p[i];
    if (b < 0x80) {
      switch (ascii_kind_[b]) {
        case kWordChar:
          word.push_back(ascii_char_[b]);
          break;
        case kSpace:
          if (!word.empty()) {
            on_word(std::string_view(word));
            word.clear();
          }
          break;
        case kPunct:
          if (!word.empty()) on_word(std::string_view(word));
          word.assign(1, ascii_char_[b]);
          on_word(std::string_view(word));
          word.clear();
          break;
        default:
          break;
      }
      ++i;
      continue;
    }
    char32_t c;
    bool valid;
    const size_t len = decode_utf8(p + i, n - i, &c, &valid);
    if (!valid && issues != nullptr) {
      if (issues->invalid_sequences++ == 0) issues->first_invalid_offset = i;
    }
    non_ascii(c, word, on_word);
    i += len;
  }
  if (!word.empty()) on_word(std::string_view(word));
  word.clear();
}

}  // namespace bert::text
