// Tokenization statistics over text files: tokens per word (fertility), [UNK] rate, share of "##"
// pieces, and encode throughput. Used for `bert-vocab stats` and the held-out summary of `build`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "wordpiece/tokenizer.h"

namespace bert::wordpiece {

struct EncodeStats {
  uint64_t lines = 0, bytes = 0;
  uint64_t words = 0;          // pre-tokenized words (= tokens that are not "##" pieces)
  uint64_t tokens = 0;
  uint64_t unk = 0;            // [UNK] tokens (each stands for one whole word)
  uint64_t continuation = 0;   // "##" pieces
  double seconds = 0;          // wall time spent encoding (excludes reading)

  double tokens_per_word() const { return words ? static_cast<double>(tokens) / static_cast<double>(words) : 0; }
  double unk_rate() const { return tokens ? static_cast<double>(unk) / static_cast<double>(tokens) : 0; }
  double continuation_share() const {
    return tokens ? static_cast<double>(continuation) / static_cast<double>(tokens) : 0;
  }
  double mb_per_second() const { return seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0; }
  double tokens_per_second() const { return seconds > 0 ? static_cast<double>(tokens) / seconds : 0; }
};

// Encodes `files` line by line on `threads` threads (0 = hardware concurrency), reading at most
// `max_bytes` in total (0 = all). Throws Error(kInput) for missing/empty/binary files.
EncodeStats measure(const Tokenizer& tokenizer, const std::vector<std::filesystem::path>& files,
                    int threads, uint64_t max_bytes = 0);

}  // namespace bert::wordpiece
