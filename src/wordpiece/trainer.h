// Vocabulary training: word counts -> alphabet -> merges -> Vocab. Two merge rules:
//   wordpiece (default): merge the pair maximizing count(ab) / (count(a) * count(b));
//   bpe: merge the most frequent pair, as Hugging Face's WordPieceTrainer does (BPE + "##").
// Pair counts are updated incrementally and the best pair comes from a lazily validated priority
// queue, so each merge costs time proportional to the words it touches, not to the corpus.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "text/normalizer.h"
#include "wordpiece/vocab.h"
#include "wordpiece/word_counter.h"

namespace bert::wordpiece {

enum class Algorithm { kWordPiece, kBpe };
// Parses "wordpiece" | "bpe"; throws Error(kUsage) listing the choices otherwise.
Algorithm parse_algorithm(std::string_view name);

struct TrainerOptions {
  int vocab_size = 30522;                  // final size including specials, [unusedN] and alphabet
  Algorithm algorithm = Algorithm::kWordPiece;
  text::CaseMode mode = text::CaseMode::kUncased;
  uint64_t min_frequency = 2;              // pairs seen fewer times are never merged
  int limit_alphabet = 1000;               // keep the N most frequent characters; 0 = keep all
  int unused = 0;                          // "[unused0]".. reserved slots after the specials
  int threads = 0;                         // counting threads; 0 = hardware concurrency
  size_t memory_mb = 1024;                 // word-table budget (see CountOptions)
  int max_input_chars_per_word = 100;      // stored in the vocab config; longer words are [UNK]
  // Special tokens, in id order from 0. Must include the five named in TokenizerConfig.
  std::vector<std::string> special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
};

struct TrainProgress {
  enum Phase { kCounting, kMerging } phase = kCounting;
  uint64_t done = 0;   // bytes counted, or tokens in the vocabulary
  uint64_t total = 0;  // bytes to count, or the target vocabulary size
};

struct TrainReport {
  WordCounts counts;          // statistics of the counting stage (the word list itself is cleared)
  size_t distinct_words = 0;  // distinct words kept for training
  size_t alphabet_size = 0;   // characters kept (after limit_alphabet)
  size_t alphabet_dropped = 0;  // distinct characters dropped by limit_alphabet
  size_t initial_vocab = 0;   // specials + unused + alphabet + "##" characters
  size_t merges = 0;
  double count_seconds = 0, merge_seconds = 0;
  std::string stop_reason;    // why merging ended before vocab_size, if it did
};

// Learns a vocabulary from counted words. Throws Error(kUsage) when vocab_size cannot hold the
// specials, unused slots and alphabet (the message says the minimum), Error(kInput) on no words.
std::vector<std::string> learn_vocab(const WordCounts& counts, const TrainerOptions& options,
                                     TrainReport* report,
                                     const std::function<void(const TrainProgress&)>& progress = {});

// Counts words in `files` and learns a vocabulary; deterministic for any thread count.
Vocab train_vocab(const std::vector<std::filesystem::path>& files, const TrainerOptions& options,
                  TrainReport* report, const std::function<void(const TrainProgress&)>& progress = {});

// The TokenizerConfig a trained vocab carries for these options.
TokenizerConfig config_for(const TrainerOptions& options);

}  // namespace bert::wordpiece
