// Sequence building: which token ranges of the shards form each training sequence. The result is an
// index of offsets (SequenceRef), never a copy of the tokens, so memory stays small for any corpus.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/shard.h"

namespace bert::data {

struct SequenceOptions {
  int max_seq_len = 128;                   // tokens per sequence incl. [CLS] and [SEP]s
  std::string packing = "full-sentences";  // "full-sentences" | "nsp-pairs"
  bool cross_documents = true;             // full-sentences: continue into the next doc after a [SEP]
  double short_seq_prob = 0.1;             // nsp-pairs: share of documents with a shorter target length
  // Throws Error(kUsage) naming the data.* key when a value is out of range.
  void validate() const;
  bool nsp() const { return packing == "nsp-pairs"; }
};

// One sequence: [CLS] A [SEP] for full-sentences, [CLS] A [SEP] B [SEP] for nsp-pairs. Each segment is
// a contiguous token range of one shard. In full-sentences with cross_documents, A may span document
// boundaries; a [SEP] is inserted at each boundary strictly inside it.
struct SequenceRef {
  uint64_t a_begin = 0;
  uint64_t b_begin = 0;
  uint32_t a_shard = 0;
  uint32_t b_shard = 0;
  uint32_t a_len = 0;
  uint32_t b_len = 0;        // 0: single-segment sequence
  int32_t nsp_label = -100;  // 0 = B is the actual next text, 1 = B is random, -100 = no NSP
  uint32_t length = 0;       // real tokens in the sequence incl. [CLS]/[SEP]s (<= max_seq_len)
};

// The list of SequenceRefs of an index. Built by appending; then read by position. With a spill
// directory, appends go through a small buffer into an already-unlinked file there, which finish()
// memory-maps: the index (40 bytes per sequence) then lives in the page cache, not in the process's
// anonymous memory, so reading a corpus far larger than RAM stays bounded. Without one (tests, tiny
// data) it is a plain vector. Move-only.
class RefList {
 public:
  explicit RefList(const std::filesystem::path& spill_dir = {});
  ~RefList();
  RefList(RefList&& other) noexcept;
  RefList& operator=(RefList&& other) noexcept;
  RefList(const RefList&) = delete;
  RefList& operator=(const RefList&) = delete;

  // Appends (before finish()). Throws Error(kIo) if the spill file cannot be written.
  void push_back(const SequenceRef& r);
  // Ends appending and maps the spill file. Reading before finish() is only valid in memory mode.
  void finish();
  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  const SequenceRef& operator[](size_t i) const { return data()[i]; }
  const SequenceRef* begin() const { return data(); }
  const SequenceRef* end() const { return data() + count_; }

 private:
  const SequenceRef* data() const { return mapped_ != nullptr ? mapped_ : buffer_.data(); }
  void flush();
  void release();

  std::vector<SequenceRef> buffer_;  // all refs (memory mode) or the pending ones (spill mode)
  std::filesystem::path spill_dir_;  // where the spill file lives (named in errors)
  int fd_ = -1;                      // the unlinked spill file, or -1
  size_t count_ = 0;
  const SequenceRef* mapped_ = nullptr;
  size_t mapped_bytes_ = 0;
};

struct SequenceIndex {
  RefList refs;
  uint64_t real_tokens = 0;         // sum of lengths: non-pad tokens
  uint64_t one_sentence_docs = 0;   // nsp-pairs: documents with one sentence (B forced random, as BERT)
  uint64_t forced_random_next = 0;  // nsp-pairs: pairs whose chunk had one sentence, so B is random
  uint64_t random_next = 0;         // nsp-pairs: pairs with nsp_label 1
  // Non-pad share of all max_seq_len slots.
  double packing_efficiency(int max_seq_len) const {
    return refs.empty() ? 0.0 : static_cast<double>(real_tokens) / (static_cast<double>(refs.size()) * max_seq_len);
  }
};

using ShardList = std::vector<std::shared_ptr<const Shard>>;

// RoBERTa FULL-SENTENCES: fills each sequence with the next max_seq_len - 2 tokens of the stream,
// splitting a sentence that does not fit in the space left; documents are joined with a [SEP] when
// cross_documents, otherwise each document ends its last sequence (then padded). Deterministic.
SequenceIndex build_full_sentences(const ShardList& shards, const SequenceOptions& options);

// Original BERT pairs, as create_pretraining_data.py builds them: per document a target length
// (max_seq_len - 3, or uniform in [2, that] with short_seq_prob), chunks of whole sentences up to it,
// A = a random prefix of the chunk, B = the rest (label 0) or, with probability 0.5 or when the chunk
// is one sentence, text from a random other document (label 1; the unused sentences are put back);
// then truncate_seq_pair (trim the longer segment from the front or back at random). Randomness comes
// from derive_seed(seed, "nsp", epoch, shard), so the pairing is re-drawn every epoch.
SequenceIndex build_nsp_pairs(const ShardList& shards, const SequenceOptions& options, uint64_t seed,
                              uint64_t epoch);

}  // namespace bert::data
