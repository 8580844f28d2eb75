// Character classes and UTF-8 coding on top of utf8proc.
#include "text/unicode.h"

#include <utf8proc.h>

namespace bert::text {

size_t decode_utf8(const uint8_t* p, size_t n, char32_t* cp, bool* valid) {
  const uint8_t b0 = p[0];
  *valid = true;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  char32_t c;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte (rules out overlongs/surrogates)
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2; c = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3; c = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4; c = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *cp = kReplacementChar;
    *valid = false;
    return 1;
  }
  for (size_t i = 1; i < len; ++i) {
    const uint8_t lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
    if (i >= n || p[i] < lo_i || p[i] > hi_i) {
      *cp = kReplacementChar;
      *valid = false;
      return i;  // the maximal subpart ends before the offending byte
    }
    c = (c << 6) | (p[i] & 0x3F);
  }
  *cp = c;
  return len;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (char ch : s) n += (static_cast<uint8_t>(ch) & 0xC0) != 0x80;
  return n;
}

std::string_view utf8_prefix(std::string_view s, size_t chars) {
  size_t n = 0;
  for (size_t at = 0; at < s.size(); ++at) {
    if ((static_cast<uint8_t>(s[at]) & 0xC0) != 0x80 && n++ == chars) return s.substr(0, at);
  }
  return s;
}

namespace {
utf8proc_category_t category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}
}  // namespace

bool is_whitespace(char32_t c) {
  if (c == ' ' || (c >= 0x09 && c <= 0x0D) || c == 0x85) return true;
  if (c < 0x80) return false;
  const auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CS:
      return true;
    case UTF8PROC_CATEGORY_CF:
      // HF's `is_other` comes from the unicode_categories crate, whose tables predate Unicode 9:
      // it does not know these later format characters and keeps them. Matching HF exactly here.
      return !(c == 0x0890 || c == 0x0891 || c == 0x08E2 || c == 0x110CD || (c >= 0x13430 && c <= 0x1343F));
    default:
      // Unassigned code points (Cn) are kept by HF although its comment says otherwise.
      return false;
  }
}

bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) {
    return true;
  }
  if (c < 0x80) return false;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

bool is_cjk_ideograph(char32_t c) {
  // HF's is_chinese_char ranges. Google's tokenization.py has 0x2B820 where HF has 0x2B920, so
  // U+2B820..U+2B91F (CJK Extension E) are isolated by Google but not by HF; we follow HF.
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_nonspacing_mark(char32_t c) { return category(c) == UTF8PROC_CATEGORY_MN; }

int decompose(char32_t c, char32_t* out, int cap) {
  int last_boundclass = 0;
  static_assert(sizeof(char32_t) == sizeof(utf8proc_int32_t));
  const auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c),
                                         reinterpret_cast<utf8proc_int32_t*>(out), cap,
                                         UTF8PROC_DECOMPOSE, &last_boundclass);
  if (n < 0 || n > cap) {
    out[0] = c;
    return 1;
  }
  return static_cast<int>(n);
}

int to_lowercase(char32_t c, char32_t* out) {
  if (c == 0x130) {  // the one unconditional multi-character lowercase mapping (SpecialCasing.txt)
    out[0] = 'i';
    out[1] = 0x307;
    return 2;
  }
  out[0] = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
  return 1;
}

}  // namespace bert::text
