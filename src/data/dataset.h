// A training or validation set: the token shards of a list of corpus files (built or reused from the
// cache) plus the sequence index over them, and the code that lays one sequence out as model input.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "data/options.h"
#include "data/sequence_builder.h"
#include "data/shard.h"
#include "wordpiece/vocab.h"

namespace bert::data {

// Numbers for the log and metrics: corpus size, sequences and packing (epoch 0), NSP counts.
struct DatasetStats {
  uint64_t files = 0, files_reused = 0, files_built = 0, bad_lines = 0;
  uint64_t shards = 0, documents = 0, sentences = 0, tokens = 0;
  uint64_t source_bytes = 0;      // bytes of the source files tokenized in this call (not reused)
  double build_seconds = 0;       // time spent tokenizing them
  uint64_t sequences = 0, real_tokens = 0;
  double packing_efficiency = 0;  // real_tokens / (sequences * max_seq_len)
  uint64_t one_sentence_docs = 0, forced_random_next = 0, random_next = 0;  // nsp-pairs
  nlohmann::json to_json() const;
};

class Dataset {
 public:
  // Wraps opened shards (all made with `vocab`). Throws Error(kUsage) for bad options and
  // Error(kInput) when the shards hold no tokens ("the corpus is empty").
  Dataset(ShardList shards, std::shared_ptr<const wordpiece::Vocab> vocab, SequenceOptions options,
          uint64_t seed);

  // The sequences of `epoch`: one fixed index for full-sentences, re-paired per epoch for nsp-pairs
  // (deterministic in (seed, epoch)). Thread-safe; the last two epochs are kept.
  std::shared_ptr<const SequenceIndex> sequences(uint64_t epoch) const;

  // Writes `ref` as [CLS] A [SEP] (B [SEP]) then [PAD]s into rows of max_seq_len():
  // ids [T], token_types [T] (0 for [CLS] A [SEP], 1 for B [SEP], 0 on padding), attention [T].
  // Returns the real length.
  int fill(const SequenceRef& ref, int64_t* ids, int64_t* token_types, int64_t* attention) const;

  const wordpiece::Vocab& vocab() const { return *vocab_; }
  std::shared_ptr<const wordpiece::Vocab> vocab_ptr() const { return vocab_; }
  const SequenceOptions& options() const { return options_; }
  int max_seq_len() const { return options_.max_seq_len; }
  const ShardList& shards() const { return shards_; }
  // Identifies shards + sequence options + seed: a loader cursor is only valid on the same value.
  uint64_t fingerprint() const { return fingerprint_; }
  const DatasetStats& stats() const { return stats_; }
  DatasetStats& mutable_stats() { return stats_; }

 private:
  int copy_segment(uint32_t shard, uint64_t begin, uint64_t len, bool sep_at_docs, int64_t* out) const;

  ShardList shards_;
  std::shared_ptr<const wordpiece::Vocab> vocab_;
  SequenceOptions options_;
  uint64_t seed_;
  uint64_t fingerprint_ = 0;
  DatasetStats stats_;
  mutable std::mutex mutex_;
  mutable std::map<uint64_t, std::shared_ptr<const SequenceIndex>> cache_;
};

// Opens (building or reusing in opts.cache_dir) the shards of `files` and indexes their sequences
// with opts' max_seq_len / packing / cross_documents / short_seq_prob. With several ranks sharing a
// cache directory, let rank 0 call it first and the others after a barrier: they then only reuse. Throws Error(kUsage) for empty
// `files` or bad options, Error(kInput) for unreadable, malformed or empty corpora (naming the file),
// Error(kIo) when the cache cannot be written.
std::shared_ptr<const Dataset> prepare_dataset(const std::vector<std::filesystem::path>& files,
                                               std::shared_ptr<const wordpiece::Vocab> vocab,
                                               const DataOptions& opts, uint64_t seed);

// The sequence options named in `opts`.
SequenceOptions sequence_options(const DataOptions& opts);

}  // namespace bert::data
