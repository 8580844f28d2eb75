// Dataset: shards + per-epoch sequence index, and the [CLS] A [SEP] B [SEP] layout of one sequence.
#include "data/dataset.h"

#include <algorithm>

#include "data/shard_builder.h"
#include "util/error.h"
#include "util/log.h"
#include "util/rng.h"
#include "wordpiece/tokenizer.h"

namespace bert::data {
namespace fs = std::filesystem;

nlohmann::json DatasetStats::to_json() const {
  return {{"files", files}, {"files_reused", files_reused}, {"files_built", files_built},
          {"bad_lines", bad_lines}, {"shards", shards}, {"documents", documents},
          {"sentences", sentences}, {"tokens", tokens}, {"source_bytes_built", source_bytes},
          {"build_seconds", build_seconds}, {"sequences", sequences}, {"real_tokens", real_tokens},
          {"packing_efficiency", packing_efficiency}, {"one_sentence_docs", one_sentence_docs},
          {"forced_random_next", forced_random_next}, {"random_next", random_next}};
}

SequenceOptions sequence_options(const DataOptions& opts) {
  SequenceOptions s;
  s.max_seq_len = opts.max_seq_len;
  s.packing = opts.packing;
  s.cross_documents = opts.cross_documents;
  s.short_seq_prob = opts.short_seq_prob;
  return s;
}

Dataset::Dataset(ShardList shards, std::shared_ptr<const wordpiece::Vocab> vocab, SequenceOptions options,
                 uint64_t seed)
    : shards_(std::move(shards)), vocab_(std::move(vocab)), options_(std::move(options)), seed_(seed) {
  options_.validate();
  vocab_->require_sequence_tokens("sequence building");
  uint64_t h = util::derive_seed(seed_, options_.packing, static_cast<uint64_t>(options_.max_seq_len),
                                 options_.cross_documents, static_cast<uint64_t>(options_.short_seq_prob * 1e9));
  h = util::mix64(h ^ vocab_->fingerprint());
  for (const auto& s : shards_) {
    if (s->vocab_fingerprint() != vocab_->fingerprint()) {
      throw util::input_error("shard " + s->path().string() + " was made with another vocabulary; rebuild it");
    }
    stats_.documents += s->num_documents();
    stats_.sentences += s->num_sentences();
    stats_.tokens += s->num_tokens();
    h = util::mix64(h ^ (s->payload_crc32() + (s->num_tokens() << 32)));
  }
  fingerprint_ = h;
  stats_.shards = shards_.size();
  if (stats_.tokens == 0) {
    throw util::input_error("the corpus is empty: its files hold no tokens (only blank lines?); "
                            "check the data file names");
  }
  auto index = sequences(0);
  stats_.sequences = index->refs.size();
  stats_.real_tokens = index->real_tokens;
  stats_.packing_efficiency = index->packing_efficiency(options_.max_seq_len);
  stats_.one_sentence_docs = index->one_sentence_docs;
  stats_.forced_random_next = index->forced_random_next;
  stats_.random_next = index->random_next;
}

std::shared_ptr<const SequenceIndex> Dataset::sequences(uint64_t epoch) const {
  const uint64_t key = options_.nsp() ? epoch : 0;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  // Built under the lock: a second caller for the same epoch waits instead of building it twice.
  auto index = std::make_shared<const SequenceIndex>(
      options_.nsp() ? build_nsp_pairs(shards_, options_, seed_, key) : build_full_sentences(shards_, options_));
  if (cache_.size() >= 2) cache_.erase(cache_.begin()->first < key ? cache_.begin() : std::prev(cache_.end()));
  cache_[key] = index;
  return index;
}

int Dataset::copy_segment(uint32_t shard_id, uint64_t begin, uint64_t len, bool sep_at_docs,
                          int64_t* out) const {
  const Shard& shard = *shards_[shard_id];
  const uint64_t end = begin + len;
  if (!sep_at_docs) {
    shard.copy_tokens(begin, len, out);
    return static_cast<int>(len);
  }
  // First document starting strictly after `begin`: a [SEP] goes before each such start inside.
  uint64_t lo = 0, hi = shard.num_documents();
  while (lo < hi) {
    uint64_t mid = (lo + hi) / 2;
    if (shard.document_begin(mid) <= begin) lo = mid + 1;
    else hi = mid;
  }
  int n = 0;
  uint64_t pos = begin;
  for (uint64_t d = lo; d < shard.num_documents() && shard.document_begin(d) < end; ++d) {
    const uint64_t db = shard.document_begin(d);
    shard.copy_tokens(pos, db - pos, out + n);
    n += static_cast<int>(db - pos);
    out[n++] = vocab_->sep_id();
    pos = db;
  }
  shard.copy_tokens(pos, end - pos, out + n);
  return n + static_cast<int>(end - pos);
}

int Dataset::fill(const SequenceRef& ref, int64_t* ids, int64_t* token_types, int64_t* attention) const {
  const int t = options_.max_seq_len;
  int n = 0;
  ids[n++] = vocab_->cls_id();
  n += copy_segment(ref.a_shard, ref.a_begin, ref.a_len, /*sep_at_docs=*/!options_.nsp(), ids + n);
  ids[n++] = vocab_->sep_id();
  const int a_end = n;
  if (ref.b_len > 0) {
    n += copy_segment(ref.b_shard, ref.b_begin, ref.b_len, false, ids + n);
    ids[n++] = vocab_->sep_id();
  }
  if (n != static_cast<int>(ref.length) || n > t) {
    throw util::runtime_error("sequence layout mismatch: " + std::to_string(n) + " tokens, index says " +
                              std::to_string(ref.length));
  }
  std::fill(ids + n, ids + t, static_cast<int64_t>(vocab_->pad_id()));
  std::fill(token_types, token_types + a_end, 0);
  std::fill(token_types + a_end, token_types + n, 1);
  std::fill(token_types + n, token_types + t, 0);
  std::fill(attention, attention + n, 1);
  std::fill(attention + n, attention + t, 0);
  return n;
}

std::shared_ptr<const Dataset> prepare_dataset(const std::vector<fs::path>& files,
                                               std::shared_ptr<const wordpiece::Vocab> vocab,
                                               const DataOptions& opts, uint64_t seed) {
  if (files.empty()) throw util::usage_error("no data files given (data.train_files / data.valid_files is empty)");
  SequenceOptions seq = sequence_options(opts);
  seq.validate();
  ShardBuildOptions build;
  build.cache_dir = opts.cache_dir;
  build.on_stale_cache = opts.on_stale_cache;
  build.on_bad_line = opts.on_bad_line;
  build.threads = opts.tokenize_threads;
  wordpiece::Tokenizer tokenizer(vocab);
  ShardList shards;
  DatasetStats stats;
  for (const auto& file : files) {
    SourceShards src = build_or_reuse_shards(file, tokenizer, build);
    ++stats.files;
    if (src.reused) {
      ++stats.files_reused;
    } else {
      ++stats.files_built;
      stats.source_bytes += src.read.bytes;
      stats.build_seconds += src.build_seconds;
    }
    stats.bad_lines += src.read.bad_lines;
    for (const auto& p : src.shards) {
      // Reused shards were checksummed by build_or_reuse_shards, new ones were just written.
      shards.push_back(Shard::open(p, vocab->fingerprint(), /*verify_payload=*/false));
    }
  }
  std::shared_ptr<Dataset> dataset;
  try {
    dataset = std::make_shared<Dataset>(std::move(shards), vocab, seq, seed);
  } catch (const util::Error& e) {
    if (e.kind() != util::ErrorKind::kInput) throw;
    std::string names;
    for (const auto& f : files) names += (names.empty() ? "" : ", ") + f.string();
    throw util::input_error(std::string(e.what()) + " [files: " + names + "]");
  }
  DatasetStats& s = dataset->mutable_stats();
  s.files = stats.files;
  s.files_reused = stats.files_reused;
  s.files_built = stats.files_built;
  s.bad_lines = stats.bad_lines;
  s.source_bytes = stats.source_bytes;
  s.build_seconds = stats.build_seconds;
  util::log_info("data: " + std::to_string(s.tokens) + " tokens, " + std::to_string(s.sequences) +
                 " sequences of " + std::to_string(seq.max_seq_len) + ", packing " +
                 std::to_string(s.packing_efficiency * 100).substr(0, 5) + "%");
  return dataset;
}

}  // namespace bert::data
