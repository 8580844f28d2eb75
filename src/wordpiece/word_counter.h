// Streaming, multi-threaded word counting for vocabulary training: files are memory-mapped, cut into
// chunks at word boundaries, counted in parallel, and merged in chunk order, so the result (including
// the pruning that keeps the table inside its memory budget) does not depend on the thread count.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "text/normalizer.h"

namespace bert::wordpiece {

struct CountOptions {
  text::NormalizerOptions normalizer;   // how words are normalized before counting
  int threads = 0;                      // worker threads; 0 = hardware concurrency
  size_t memory_mb = 1024;              // budget for the word table; rare words are pruned beyond it
  int max_input_chars_per_word = 100;   // longer words are [UNK] at encode time, so not counted
  size_t chunk_bytes = size_t{1} << 20; // unit of parallel work (fixed: results must not depend on it varying)
};

struct CountProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
};

struct WordCounts {
  std::vector<std::pair<std::string, uint64_t>> words;  // distinct words and counts, sorted by bytes
  uint64_t files = 0, lines = 0, bytes = 0;
  uint64_t total_words = 0;        // word occurrences read (including pruned and too-long ones)
  uint64_t too_long_words = 0;     // occurrences longer than max_input_chars_per_word (skipped)
  uint64_t pruned_distinct = 0;    // distinct words dropped to stay inside the memory budget
  uint64_t prune_threshold = 0;    // words with a count below this were pruned (0: no pruning)
  uint64_t nul_bytes = 0;          // NUL bytes seen (dropped by clean-text)
  uint64_t invalid_utf8 = 0;       // invalid UTF-8 sequences (replaced by U+FFFD, then dropped)
  std::string first_invalid_file;  // where the first invalid sequence is
  uint64_t first_invalid_offset = 0;
};

// Counts normalized, pre-tokenized words in `files`. Throws Error(kInput) for a missing, directory,
// unreadable, empty or binary file (checked before any counting), naming the file.
WordCounts count_words(const std::vector<std::filesystem::path>& files, const CountOptions& options,
                       const std::function<void(const CountProgress&)>& progress = {});

}  // namespace bert::wordpiece
