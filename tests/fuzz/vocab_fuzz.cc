// Fuzzes vocabulary loading: vocab.txt plus tokenizer_config.json (wordpiece::Vocab::load), then
// encoding with what was loaded. Input: the bytes of vocab.txt, optionally followed by the line
// "--tokenizer_config.json--" and the bytes of tokenizer_config.json (no such line: no json file,
// Google's released-vocab case).
// Invariants: id(token(i)) == i for every token; [UNK] is there; encoding sample text (Polish, English,
// CJK, punctuation) yields ids inside the vocabulary; save() then load() gives the same tokens, settings
// and fingerprint.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "util/error.h"
#include "wordpiece/tokenizer.h"
#include "wordpiece/vocab.h"

namespace {
constexpr std::string_view kMarker = "\n--tokenizer_config.json--\n";
constexpr std::string_view kSamples[] = {
    "Zażółć gęślą jaźń. ŁÓDŹ, Kraków i Gdańsk!",
    "Unwanted running: they wanted it, don't they? 12,345.67",
    "中文字符 and 日本語 mixed\twith\u00a0spaces\u3000here",
    "[UNK] [CLS] [MASK] ##ing e\u0301 I\u0307 \u00df",
};
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bert::fuzz::quiet_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t at = input.find(kMarker);
  const fs::path dir = bert::fuzz::scratch_dir() / "vocab";
  const fs::path saved = bert::fuzz::scratch_dir() / "vocab-saved";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::remove_all(saved, ec);
  fs::create_directories(dir);
  fs::create_directories(saved);
  bert::fuzz::write_scratch("vocab/vocab.txt", input.substr(0, at));
  if (at != std::string_view::npos) {
    bert::fuzz::write_scratch("vocab/tokenizer_config.json", input.substr(at + kMarker.size()));
  }

  std::shared_ptr<const bert::wordpiece::Vocab> vocab;
  try {
    vocab = std::make_shared<const bert::wordpiece::Vocab>(bert::wordpiece::Vocab::load(dir));
  } catch (const bert::util::Error&) {
    return 0;
  }
  const int32_t n = vocab->size();
  BERT_FUZZ_CHECK(n > 0);
  for (int32_t i = 0; i < n; ++i) BERT_FUZZ_CHECK(vocab->id(vocab->token(i)) == i);
  BERT_FUZZ_CHECK(vocab->unk_id() >= 0 && vocab->unk_id() < n);
  for (int32_t id : {vocab->pad_id(), vocab->cls_id(), vocab->sep_id(), vocab->mask_id()}) {
    BERT_FUZZ_CHECK(id >= -1 && id < n);
    if (id >= 0) BERT_FUZZ_CHECK(vocab->is_special(id));
  }

  const bert::wordpiece::Tokenizer tok(vocab);
  for (std::string_view s : kSamples) {
    for (int32_t id : tok.encode_ids(s)) BERT_FUZZ_CHECK(id >= 0 && id < n);
  }
  (void)tok.decode(tok.encode_ids(kSamples[0]));

  // (The seeds token-ending-in-cr.txt, first-token-starting-with-bom.txt and save-load-*.txt are the
  // inputs this round trip found failing before vocab load dropped every trailing CR and leading BOM.)
  vocab->save(saved);
  const bert::wordpiece::Vocab again = bert::wordpiece::Vocab::load(saved);
  BERT_FUZZ_CHECK(again.tokens() == vocab->tokens());
  BERT_FUZZ_CHECK(again.fingerprint() == vocab->fingerprint());
  return 0;
}
