// Dynamic masking for masked-language modelling, applied to each sequence when its batch is made
// (never stored), from a seeded stream, so every epoch sees a fresh mask.
#pragma once

#include <cstdint>
#include <vector>

#include "data/options.h"
#include "util/rng.h"
#include "wordpiece/vocab.h"

namespace bert::data {

// Throws Error(kUsage) naming the masking.* key when an option is out of range.
void validate(const MaskingOptions& options);

// Chooses and corrupts prediction positions of one sequence.
//
// Selection is an exact count per sequence, as BERT does, with randomised rounding so the expected
// share is exactly mask_prob: k = floor(mask_prob * n) + Bernoulli(frac), n = maskable tokens (not
// special: [CLS], [SEP], [PAD], [MASK], [UNK], [unusedN]...); raised to 1 when at_least_one, capped by
// max_predictions_per_seq. Units (tokens, or whole words = a non-continuation token and the "##"
// pieces after it) are visited in random order and taken while they fit in k (BERT skips a word that
// would overshoot). If nothing fit and at_least_one, the first unit visited is taken anyway.
// Each chosen token independently becomes [MASK] (mask_token_prob), a uniform random non-special
// token (random_token_prob), or stays unchanged (the rest).
class Masker {
 public:
  Masker(const wordpiece::Vocab& vocab, const MaskingOptions& options);

  // Masks ids[0, length) in place and writes labels[i] = original id at chosen positions; labels
  // elsewhere in [0, length) are set to -100. Returns the number of chosen positions.
  int apply(int64_t* ids, int64_t* labels, int length, util::Rng& rng) const;

  const MaskingOptions& options() const { return options_; }

 private:
  MaskingOptions options_;
  int64_t mask_id_;
  std::vector<uint8_t> special_;       // by id
  std::vector<uint8_t> continuation_;  // by id
  std::vector<int32_t> replacements_;  // the non-special ids, drawn uniformly for "random token"
};

}  // namespace bert::data
