// Input text files for training and statistics: up-front checks (missing, directory, empty, binary)
// with messages that name the file and the fix, and cutting a memory-mapped file into chunks at word
// boundaries so chunks can be processed in parallel with the same result as one pass.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "text/word_splitter.h"

namespace bert::wordpiece {

// Throws Error(kInput) if `path` is missing, a directory, unreadable, empty, or looks binary (more
// than 10% NUL, control or invalid UTF-8 bytes in its first 64 KiB). Returns the size in bytes.
uint64_t check_text_file(const std::filesystem::path& path);

// A slice of a file. `skip_partial_word` is set when the slice starts inside a word longer than a
// chunk (no boundary byte found), whose remainder the consumer must skip up to the next boundary.
struct Chunk {
  uint64_t offset = 0;
  std::string_view text;
  bool skip_partial_word = false;
};

// Cuts `data` into chunks of about `target` bytes, each ending after a newline if the target window
// has one, else before an ASCII space or punctuation byte (a word boundary for every BERT mode).
std::vector<Chunk> cut_chunks(std::string_view data, size_t target);

// Number of lines in `data` (a last line without '\n' counts).
uint64_t count_lines(std::string_view data);

}  // namespace bert::wordpiece
