// Fuzzes the corpus reader (data::CorpusReader) on BERT text and JSONL, plain and gzip.
// Input: byte 0 = mode (bit 0: JSONL, else text; bit 1: gzip-compress the rest before writing it,
// so the fuzzer explores the content through a valid stream; bit 2: on_bad_line "fail", else "skip"),
// then the file's bytes. Uncompressed bytes that start with the gzip magic exercise corrupt streams.
// Invariants: for text, the sentences returned are exactly the non-blank lines (CR LF ends taken off)
// and documents break at blank lines; every sentence is non-empty; when the file is not gzip (or was
// compressed here) the reader counts every byte and every physical line.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/corpus_reader.h"
#include "fuzz_util.h"
#include "util/error.h"

namespace {

std::string gzip(std::string_view raw) {
  z_stream z{};
  BERT_FUZZ_CHECK(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, raw.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  BERT_FUZZ_CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos; }

// The documents of a BERT text file, computed the obvious way.
std::vector<std::vector<std::string>> text_documents(std::string_view raw) {
  std::vector<std::vector<std::string>> docs(1);
  size_t start = 0;
  while (start < raw.size()) {
    size_t nl = raw.find('\n', start);
    std::string line(raw.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    start = nl == std::string_view::npos ? raw.size() : nl + 1;
    if (nl != std::string_view::npos && !line.empty() && line.back() == '\r') line.pop_back();
    if (blank(line)) {
      if (!docs.back().empty()) docs.emplace_back();
    } else {
      docs.back().push_back(line);
    }
  }
  if (docs.back().empty()) docs.pop_back();
  return docs;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bert::fuzz::quiet_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool jsonl = data[0] & 1, compress = data[0] & 2, fail = data[0] & 4;
  const std::string_view raw(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto path = bert::fuzz::write_scratch(jsonl ? "corpus.jsonl" : "corpus.txt",
                                              compress ? gzip(raw) : std::string(raw));
  const bool plain = compress || raw.size() < 2 || raw[0] != '\x1f' || raw[1] != '\x8b';

  std::vector<std::vector<std::string>> docs;
  uint64_t lines = 0, bytes = 0;
  try {
    bert::data::CorpusReader reader(path, fail ? "fail" : "skip");
    std::vector<std::string> sentences;
    while (reader.next_document(sentences)) {
      BERT_FUZZ_CHECK(!sentences.empty());
      for (const auto& s : sentences) BERT_FUZZ_CHECK(!s.empty());
      docs.push_back(sentences);
    }
    lines = reader.stats().lines;
    bytes = reader.stats().bytes;
    BERT_FUZZ_CHECK(reader.stats().documents == docs.size());
  } catch (const bert::util::Error&) {
    BERT_FUZZ_CHECK(!plain || (jsonl && fail));  // only corrupt gzip or a bad line under "fail"
    return 0;
  }
  if (plain) {
    BERT_FUZZ_CHECK(bytes == raw.size());
    uint64_t expect_lines = 0;
    for (char c : raw) expect_lines += c == '\n';
    if (!raw.empty() && raw.back() != '\n') ++expect_lines;
    BERT_FUZZ_CHECK(lines == expect_lines);
    if (!jsonl) BERT_FUZZ_CHECK(docs == text_documents(raw));
  }
  return 0;
}
