// Streaming reader of raw corpora: Google BERT text (one sentence per line, blank line between
// documents) and JSONL ({"text": ...} one document per line), either optionally gzip-compressed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace bert::data {

enum class CorpusFormat { kText, kJsonl };

// JSONL for names ending in .jsonl / .jsonl.gz / .json / .json.gz, BERT text otherwise.
CorpusFormat corpus_format_for(const std::filesystem::path& path);

// Splits one JSONL document into sentences: first at newlines, then within a line after a run of
// '.', '!' or '?' (plus closing quotes/brackets) that is followed by whitespace. Empty pieces dropped.
// "He left. She stayed!\nNew line" -> {"He left.", "She stayed!", "New line"}.
std::vector<std::string> split_sentences(std::string_view text);

struct CorpusReadStats {
  uint64_t lines = 0;          // physical lines read
  uint64_t documents = 0;      // documents returned
  uint64_t sentences = 0;      // sentences returned
  uint64_t bad_lines = 0;      // JSONL lines skipped (not JSON, no string "text")
  uint64_t bytes = 0;          // uncompressed bytes read
};

// Reads one file document by document with bounded memory (a 1 MiB buffer plus the current document).
// gzip input is detected from its content (zlib's gzread), not the name.
class CorpusReader {
 public:
  // Opens `path`. on_bad_line: "skip" (count and warn) or "fail" (throw). Throws Error(kInput) if the
  // file cannot be opened, Error(kUsage) for an unknown on_bad_line.
  CorpusReader(std::filesystem::path path, const std::string& on_bad_line);
  ~CorpusReader();
  CorpusReader(const CorpusReader&) = delete;
  CorpusReader& operator=(const CorpusReader&) = delete;

  // Replaces `sentences` with the next non-empty document; returns false at end of file. A malformed
  // JSONL line under "fail" throws Error(kInput) "FILE:LINE: ..."; a corrupt gzip stream throws too.
  bool next_document(std::vector<std::string>& sentences);
  const CorpusReadStats& stats() const { return stats_; }

 private:
  bool read_line(std::string& line);
  bool next_text_document(std::vector<std::string>& sentences);
  bool next_jsonl_document(std::vector<std::string>& sentences);

  std::filesystem::path path_;
  CorpusFormat format_;
  bool skip_bad_;
  void* gz_ = nullptr;  // gzFile
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  CorpusReadStats stats_;
};

}  // namespace bert::data
