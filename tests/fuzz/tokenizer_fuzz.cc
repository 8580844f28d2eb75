// Fuzzes the normalizer, the pre-tokenizer (WordSplitter) and the WordPiece encoder on arbitrary bytes,
// against a fuzzed vocabulary and fuzzed settings.
// Input: byte 0 = settings (bits 0-3: clean_text, handle_chinese_chars, lowercase, strip_accents;
// bits 4-5: continuing prefix "##", "", "@@" or "a"), byte 1 = max_input_chars_per_word (1 + b % 40),
// byte 2 = number K (b % 16) of lines that follow as extra vocabulary tokens, then the text.
// Invariants (abort when broken):
//   - every id is inside the vocabulary;
//   - the words of WordSplitter are those of BertPreTokenizer (split at whitespace, each punctuation
//     character alone) applied to normalize()'s output;
//   - encode_ids equals a plain greedy longest-match-first reference (HF WordPiece) word by word;
//   - a word not encoded as [UNK] decodes from its pieces back to itself.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "text/normalizer.h"
#include "text/unicode.h"
#include "text/word_splitter.h"
#include "util/error.h"
#include "wordpiece/tokenizer.h"
#include "wordpiece/vocab.h"

namespace {

using bert::wordpiece::Tokenizer;
using bert::wordpiece::TokenizerConfig;
using bert::wordpiece::Vocab;

// Specials, ASCII letters and digits, Polish letters, each also as a continuation piece, and a few
// longer pieces so that greedy matching has choices to make.
std::vector<std::string> base_tokens(const std::string& prefix) {
  std::vector<std::string> t = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  std::vector<std::string> chars;
  for (char c = 'a'; c <= 'z'; ++c) chars.emplace_back(1, c);
  for (char c = '0'; c <= '9'; ++c) chars.emplace_back(1, c);
  for (const char* s : {"ą", "ę", "ł", "ó", "ś", "ż", "ź", "ć", "ń", "Ł", "Ż", "中", "文", ".", ",", "!", "?", "'"}) {
    chars.emplace_back(s);
  }
  for (const auto& c : chars) t.push_back(c);
  for (const auto& c : chars) t.push_back(prefix + c);
  for (const char* s : {"the", "un", "want", "wa", "runn", "zażó", "gęś", "żółć", "ab", "abc"}) t.emplace_back(s);
  for (const char* s : {"ing", "ed", "ółć", "łć", "bc", "bcd"}) t.push_back(prefix + s);
  return t;
}

// HF WordPiece on one normalized word: longest piece first, continuation pieces spelled with the
// prefix, the whole word [UNK] when it is too long or some position matches nothing.
std::vector<int32_t> reference_encode(const Vocab& vocab, std::string_view w, bool* failed) {
  *failed = false;
  const auto& cfg = vocab.config();
  if (bert::text::count_chars(w) > static_cast<size_t>(cfg.max_input_chars_per_word)) {
    *failed = true;
    return {vocab.unk_id()};
  }
  std::vector<int32_t> out;
  size_t start = 0;
  while (start < w.size()) {
    size_t end = w.size();
    int32_t found = -1;
    while (end > start) {
      std::string sub(w.substr(start, end - start));
      if (start > 0) sub = cfg.continuing_prefix + sub;
      found = vocab.id(sub);
      if (found >= 0) break;
      do --end; while (end > start && (static_cast<uint8_t>(w[end]) & 0xC0) == 0x80);
    }
    if (found < 0) {
      *failed = true;
      return {vocab.unk_id()};
    }
    out.push_back(found);
    start = end;
  }
  return out;
}

// BertPreTokenizer over already-normalized text: whitespace separates, punctuation stands alone.
std::vector<std::string> pretokenize(const std::string& normalized) {
  std::vector<std::string> words;
  std::string word;
  const auto* p = reinterpret_cast<const uint8_t*>(normalized.data());
  for (size_t i = 0; i < normalized.size();) {
    char32_t c;
    bool valid;
    const size_t len = bert::text::decode_utf8(p + i, normalized.size() - i, &c, &valid);
    BERT_FUZZ_CHECK(valid);  // normalize() writes valid UTF-8
    const std::string piece = normalized.substr(i, len);
    i += len;
    if (bert::text::is_whitespace(c) || bert::text::is_punctuation(c)) {
      if (!word.empty()) words.push_back(word);
      word.clear();
      if (!bert::text::is_whitespace(c)) words.push_back(piece);
    } else {
      word += piece;
    }
  }
  if (!word.empty()) words.push_back(word);
  return words;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bert::fuzz::quiet_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  TokenizerConfig cfg;
  cfg.normalizer.clean_text = data[0] & 1;
  cfg.normalizer.handle_chinese_chars = data[0] & 2;
  cfg.normalizer.lowercase = data[0] & 4;
  cfg.normalizer.strip_accents = data[0] & 8;
  static const char* const kPrefixes[] = {"##", "", "@@", "a"};
  cfg.continuing_prefix = kPrefixes[(data[0] >> 4) & 3];
  cfg.max_input_chars_per_word = 1 + data[1] % 40;
  const int extra = data[2] % 16;
  std::string_view rest(reinterpret_cast<const char*>(data) + 3, size - 3);

  std::vector<std::string> tokens = base_tokens(cfg.continuing_prefix);
  std::set<std::string> seen(tokens.begin(), tokens.end());
  for (int k = 0; k < extra && !rest.empty(); ++k) {
    const size_t nl = rest.find('\n');
    std::string t(rest.substr(0, nl));
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (!t.empty() && seen.insert(t).second) tokens.push_back(t);
  }
  const std::string_view text = rest;

  std::shared_ptr<const Vocab> vocab;
  try {
    vocab = std::make_shared<const Vocab>(tokens, cfg, "fuzz-vocab");
  } catch (const bert::util::Error&) {
    return 0;  // e.g. an extra token that looks like nothing Vocab accepts
  }
  const Tokenizer tok(vocab);
  const bert::text::WordSplitter splitter(cfg.normalizer);

  const std::vector<int32_t> ids = tok.encode_ids(text);
  for (int32_t id : ids) BERT_FUZZ_CHECK(id >= 0 && id < vocab->size());

  const std::vector<std::string> words = splitter.split(text);
  BERT_FUZZ_CHECK(words == pretokenize(bert::text::normalize(text, cfg.normalizer)));

  size_t at = 0;
  for (const auto& w : words) {
    BERT_FUZZ_CHECK(!w.empty());
    bool failed = false;
    const std::vector<int32_t> expect = reference_encode(*vocab, w, &failed);
    BERT_FUZZ_CHECK(at + expect.size() <= ids.size());
    BERT_FUZZ_CHECK(std::vector<int32_t>(ids.begin() + at, ids.begin() + at + expect.size()) == expect);
    if (!failed) BERT_FUZZ_CHECK(tok.decode(expect, /*skip_special=*/false) == w);
    at += expect.size();
  }
  BERT_FUZZ_CHECK(at == ids.size());
  (void)tok.decode(ids);
  return 0;
}
