// Exact-count (randomised rounding) token / whole-word masking with the 80/10/10 corruption split.
#include "data/masking.h"

#include <cmath>
#include <string>

#include "util/error.h"

namespace bert::data {

void validate(const MaskingOptions& o) {
  auto prob = [](const char* key, double v) {
    if (!(v >= 0.0 && v <= 1.0)) {
      throw util::usage_error(std::string("masking.") + key + " must be in [0, 1], got " + std::to_string(v));
    }
  };
  prob("mask_prob", o.mask_prob);
  prob("mask_token_prob", o.mask_token_prob);
  prob("random_token_prob", o.random_token_prob);
  if (o.mask_token_prob + o.random_token_prob > 1.0 + 1e-12) {
    throw util::usage_error("masking.mask_token_prob + masking.random_token_prob must be <= 1, got " +
                            std::to_string(o.mask_token_prob + o.random_token_prob));
  }
  if (o.max_predictions_per_seq < 0) {
    throw util::usage_error("masking.max_predictions_per_seq must be >= 0 (0 = no cap), got " +
                            std::to_string(o.max_predictions_per_seq));
  }
}

Masker::Masker(const wordpiece::Vocab& vocab, const MaskingOptions& options)
    : options_(options), mask_id_(vocab.mask_id()) {
  validate(options_);
  vocab.require_sequence_tokens("masking");
  special_.resize(static_cast<size_t>(vocab.size()));
  continuation_.resize(static_cast<size_t>(vocab.size()));
  for (int32_t id = 0; id < vocab.size(); ++id) {
    special_[static_cast<size_t>(id)] = vocab.is_special(id);
    continuation_[static_cast<size_t>(id)] = vocab.is_continuation(id);
    if (!vocab.is_special(id)) replacements_.push_back(id);
  }
  if (replacements_.empty() && options_.random_token_prob > 0) {
    throw util::usage_error("masking.random_token_prob > 0 but the vocabulary has no non-special token");
  }
}

int Masker::apply(int64_t* ids, int64_t* labels, int length, util::Rng& rng) const {
  // unit u covers positions [start[u], end[u]) -- a token, or a word with its ## pieces. The scratch
  // is per thread (the Masker is shared by the loader's threads) and fetched once: this loop is the
  // loader's hot path.
  thread_local std::vector<int32_t> scratch;
  if (scratch.size() < 3 * static_cast<size_t>(length)) scratch.resize(3 * static_cast<size_t>(length));
  int32_t* start = scratch.data();
  int32_t* end = start + length;
  int32_t* order = end + length;
  const uint8_t* special = special_.data();
  const uint8_t* continuation = continuation_.data();
  const bool whole_word = options_.whole_word;
  int units = 0, maskable = 0;
  bool in_word = false;
  for (int i = 0; i < length; ++i) {
    labels[i] = -100;
    const auto id = static_cast<size_t>(ids[i]);
    if (special[id]) {
      in_word = false;
      continue;
    }
    ++maskable;
    if (whole_word && in_word && continuation[id]) {
      end[units - 1] = i + 1;
    } else {
      start[units] = i;
      end[units] = i + 1;
      ++units;
    }
    in_word = true;
  }
  if (maskable == 0) return 0;

  const double want = options_.mask_prob * maskable;
  int k = static_cast<int>(std::floor(want));
  if (rng.uniform01() < want - k) ++k;
  if (options_.at_least_one && k < 1) k = 1;
  if (options_.max_predictions_per_seq > 0 && k > options_.max_predictions_per_seq) {
    k = options_.max_predictions_per_seq;
  }
  if (k == 0) return 0;

  for (int u = 0; u < units; ++u) order[u] = u;
  const double mask_cut = options_.mask_token_prob;
  const double random_cut = options_.mask_token_prob + options_.random_token_prob;
  auto choose = [&](int u) {
    for (int i = start[u]; i < end[u]; ++i) {
      labels[i] = ids[i];
      const double r = rng.uniform01();
      if (r < mask_cut) ids[i] = mask_id_;
      else if (r < random_cut) ids[i] = replacements_[rng.uniform(replacements_.size())];
    }
    return end[u] - start[u];
  };
  int chosen = 0;
  int first = -1;
  // Incremental Fisher-Yates: visit units in random order, stopping once k tokens are chosen.
  for (int v = 0; v < units && chosen < k; ++v) {
    const int pick = v + static_cast<int>(rng.uniform(static_cast<uint64_t>(units - v)));
    std::swap(order[v], order[pick]);
    const int u = order[v];
    if (first < 0) first = u;
    if (chosen + (end[u] - start[u]) > k) continue;
    chosen += choose(u);
  }
  if (chosen == 0 && options_.at_least_one) chosen = choose(first);
  return chosen;
}

}  // namespace bert::data
