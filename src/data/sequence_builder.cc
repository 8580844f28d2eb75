// FULL-SENTENCES packing and BERT NSP pairing over shard offsets.
#include "data/sequence_builder.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "util/error.h"
#include "util/rng.h"

namespace bert::data {

namespace {
constexpr size_t kSpillBuffer = 1 << 14;  // refs buffered before a write (640 KB)

// The spill dir of an index: next to the shards (a real disk, unlike a tmpfs /tmp).
std::filesystem::path spill_dir_for(const ShardList& shards) {
  return shards.empty() ? std::filesystem::path() : shards.front()->path().parent_path();
}
}  // namespace

RefList::RefList(const std::filesystem::path& spill_dir) : spill_dir_(spill_dir) {
  if (spill_dir.empty()) return;
  std::string tmpl = (spill_dir / "sequence-index-XXXXXX").string();
  fd_ = ::mkstemp(tmpl.data());
  if (fd_ < 0) {
    throw util::io_error("cannot create a sequence index file in " + spill_dir.string() + ": " +
                         std::strerror(errno) + " (is the cache directory writable?)");
  }
  ::unlink(tmpl.c_str());  // anonymous from now on: the kernel frees it with the last reference
  buffer_.reserve(kSpillBuffer);
}

RefList::~RefList() { release(); }

RefList::RefList(RefList&& o) noexcept
    : buffer_(std::move(o.buffer_)), spill_dir_(std::move(o.spill_dir_)), fd_(std::exchange(o.fd_, -1)), count_(std::exchange(o.count_, 0)),
      mapped_(std::exchange(o.mapped_, nullptr)), mapped_bytes_(std::exchange(o.mapped_bytes_, 0)) {}

RefList& RefList::operator=(RefList&& o) noexcept {
  if (this != &o) {
    release();
    buffer_ = std::move(o.buffer_);
    spill_dir_ = std::move(o.spill_dir_);
    fd_ = std::exchange(o.fd_, -1);
    count_ = std::exchange(o.count_, 0);
    mapped_ = std::exchange(o.mapped_, nullptr);
    mapped_bytes_ = std::exchange(o.mapped_bytes_, 0);
  }
  return *this;
}

void RefList::release() {
  if (mapped_ != nullptr) ::munmap(const_cast<SequenceRef*>(mapped_), mapped_bytes_);
  if (fd_ >= 0) ::close(fd_);
  mapped_ = nullptr;
  fd_ = -1;
}

void RefList::push_back(const SequenceRef& r) {
  buffer_.push_back(r);
  ++count_;
  if (fd_ >= 0 && buffer_.size() >= kSpillBuffer) flush();
}

void RefList::flush() {
  const char* p = reinterpret_cast<const char*>(buffer_.data());
  size_t left = buffer_.size() * sizeof(SequenceRef);
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw util::io_error("cannot write the sequence index in " + spill_dir_.string() + " (next to the token shards): " +
                           std::strerror(errno) + " (is the disk full?)");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  buffer_.clear();
}

void RefList::finish() {
  if (fd_ < 0 || mapped_ != nullptr) return;
  flush();
  buffer_.shrink_to_fit();
  if (count_ == 0) return;
  mapped_bytes_ = count_ * sizeof(SequenceRef);
  void* m = ::mmap(nullptr, mapped_bytes_, PROT_READ, MAP_SHARED, fd_, 0);
  if (m == MAP_FAILED) throw util::io_error(std::string("cannot map the sequence index: ") + std::strerror(errno));
  mapped_ = static_cast<const SequenceRef*>(m);
}

void SequenceOptions::validate() const {
  if (packing != "full-sentences" && packing != "nsp-pairs") {
    throw util::usage_error("data.packing must be \"full-sentences\" or \"nsp-pairs\", got \"" + packing + "\"");
  }
  if (max_seq_len < 8 || max_seq_len > 65536) {
    throw util::usage_error("data.max_seq_len must be in [8, 65536], got " + std::to_string(max_seq_len));
  }
  if (!(short_seq_prob >= 0.0 && short_seq_prob <= 1.0)) {
    throw util::usage_error("data.short_seq_prob must be in [0, 1], got " + std::to_string(short_seq_prob));
  }
}

SequenceIndex build_full_sentences(const ShardList& shards, const SequenceOptions& options) {
  options.validate();
  SequenceIndex index;
  index.refs = RefList(spill_dir_for(shards));
  const uint64_t budget = static_cast<uint64_t>(options.max_seq_len) - 2;  // room after [CLS] .. [SEP]
  for (uint32_t si = 0; si < shards.size(); ++si) {
    const Shard& shard = *shards[si];
    uint64_t begin = 0, len = 0, used = 0;  // used = tokens + inner [SEP]s
    auto emit = [&](uint64_t b, uint64_t n, uint64_t u) {
      SequenceRef r;
      r.a_shard = si;
      r.a_begin = b;
      r.a_len = static_cast<uint32_t>(n);
      r.length = static_cast<uint32_t>(u + 2);
      index.real_tokens += r.length;
      index.refs.push_back(r);
    };
    for (uint64_t d = 0; d < shard.num_documents(); ++d) {
      uint64_t pos = shard.document_begin(d);
      const uint64_t end = shard.document_begin(d + 1);
      if (!options.cross_documents) {
        for (; pos < end; pos += std::min(budget, end - pos)) {
          uint64_t take = std::min(budget, end - pos);
          emit(pos, take, take);
        }
        continue;
      }
      if (len > 0) {
        if (used + 1 >= budget) {  // no room for the joining [SEP] and a token
          emit(begin, len, used);
          len = used = 0;
        } else {
          used += 1;
        }
      }
      while (pos < end) {
        if (len == 0) begin = pos;
        uint64_t take = std::min(end - pos, budget - used);
        len += take;
        used += take;
        pos += take;
        if (used == budget) {
          emit(begin, len, used);
          len = used = 0;
        }
      }
    }
    if (len > 0) emit(begin, len, used);
  }
  index.refs.finish();
  return index;
}

namespace {

struct Segment {
  uint32_t shard;
  uint64_t begin;
  uint64_t len;
};

// BERT's truncate_seq_pair: trim the longer segment (B on ties) one token at a time, from the front
// or the back with equal probability, until the pair fits.
void truncate_pair(Segment& a, Segment& b, uint64_t max_tokens, util::Rng& rng) {
  while (a.len + b.len > max_tokens) {
    Segment& longer = a.len > b.len ? a : b;
    if (rng.uniform01() < 0.5) ++longer.begin;
    --longer.len;
  }
}

}  // namespace

SequenceIndex build_nsp_pairs(const ShardList& shards, const SequenceOptions& options, uint64_t seed,
                              uint64_t epoch) {
  options.validate();
  SequenceIndex index;
  index.refs = RefList(spill_dir_for(shards));
  const uint64_t max_tokens = static_cast<uint64_t>(options.max_seq_len) - 3;
  std::vector<uint64_t> doc_prefix{0};  // global document id of each shard's first document
  for (const auto& s : shards) doc_prefix.push_back(doc_prefix.back() + s->num_documents());
  const uint64_t total_docs = doc_prefix.back();

  // BERT forces B random for a one-sentence chunk (it has no real next segment), which alone would
  // push the random share above one half (54% on the quickstart corpus). The free choices compensate:
  // their probability steers the running share back to 50%, so the labels are balanced overall while
  // each free label is still a coin flip (drawn from the seeded stream, so epochs stay reproducible).
  uint64_t decisions = 0, randoms = 0;
  auto random_next_prob = [&] {
    const double excess = static_cast<double>(randoms) - 0.5 * static_cast<double>(decisions);
    return std::clamp(0.5 - excess / 16.0, 0.05, 0.95);
  };
  for (uint32_t si = 0; si < shards.size(); ++si) {
    const Shard& shard = *shards[si];
    util::Rng rng(util::derive_seed(seed, "nsp", epoch, si));
    auto sentence_len = [&](uint64_t s) { return shard.sentence_begin(s + 1) - shard.sentence_begin(s); };
    for (uint64_t d = 0; d < shard.num_documents(); ++d) {
      const uint64_t s0 = shard.document_sentence(d), s1 = shard.document_sentence(d + 1);
      if (s1 - s0 == 1) ++index.one_sentence_docs;
      uint64_t target = max_tokens;
      if (rng.uniform01() < options.short_seq_prob) target = 2 + rng.uniform(max_tokens - 1);
      uint64_t chunk_start = s0, chunk_len = 0;
      for (uint64_t i = s0; i < s1; ++i) {
        chunk_len += sentence_len(i);
        if (i + 1 != s1 && chunk_len < target) continue;
        const uint64_t n_chunk = i - chunk_start + 1;
        const uint64_t a_end = n_chunk >= 2 ? 1 + rng.uniform(n_chunk - 1) : 1;
        Segment a{si, shard.sentence_begin(chunk_start), 0};
        a.len = shard.sentence_begin(chunk_start + a_end) - a.begin;
        Segment b{si, 0, 0};
        int32_t label = 0;
        if (n_chunk == 1 || rng.uniform01() < random_next_prob()) {
          label = 1;
          if (n_chunk == 1) ++index.forced_random_next;
          const uint64_t target_b = target > a.len ? target - a.len : 1;
          const uint64_t self = doc_prefix[si] + d;
          uint64_t g = self;
          for (int attempt = 0; attempt < 10 && g == self; ++attempt) g = rng.uniform(total_docs);
          const uint32_t rs = static_cast<uint32_t>(
              std::upper_bound(doc_prefix.begin(), doc_prefix.end(), g) - doc_prefix.begin() - 1);
          const Shard& other = *shards[rs];
          const uint64_t rd = g - doc_prefix[rs];
          const uint64_t r0 = other.document_sentence(rd), r1 = other.document_sentence(rd + 1);
          uint64_t j = r0 + rng.uniform(r1 - r0);
          b = {rs, other.sentence_begin(j), 0};
          for (; j < r1 && b.len < target_b; ++j) b.len += other.sentence_begin(j + 1) - other.sentence_begin(j);
          i -= n_chunk - a_end;  // put the unused sentences back
        } else {
          b.begin = shard.sentence_begin(chunk_start + a_end);
          b.len = shard.sentence_begin(i + 1) - b.begin;
        }
        truncate_pair(a, b, max_tokens, rng);
        SequenceRef r;
        r.a_shard = a.shard;
        r.a_begin = a.begin;
        r.a_len = static_cast<uint32_t>(a.len);
        r.b_shard = b.shard;
        r.b_begin = b.begin;
        r.b_len = static_cast<uint32_t>(b.len);
        r.nsp_label = label;
        r.length = static_cast<uint32_t>(a.len + b.len + 3);
        index.real_tokens += r.length;
        index.random_next += static_cast<uint64_t>(label);
        ++decisions;
        randoms += static_cast<uint64_t>(label);
        index.refs.push_back(r);
        chunk_start = i + 1;
        chunk_len = 0;
      }
    }
  }
  index.refs.finish();
  return index;
}

}  // namespace bert::data
