// Token shard writing (streamed, atomic) and reading (memory-mapped, validated).
#include "data/shard.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "util/atomic_file.h"
#include "util/error.h"

namespace bert::data {
namespace fs = std::filesystem;

namespace {

constexpr size_t kWriteBuffer = 1 << 20;

uint32_t crc_update(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = static_cast<uint32_t>(crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

uint32_t header_crc(const ShardHeader& h) {
  return crc_update(0, &h, offsetof(ShardHeader, header_crc32));
}

uint64_t pad8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

}  // namespace

std::string tokenizer_settings_json(const wordpiece::Vocab& vocab) {
  const auto& c = vocab.config();
  nlohmann::json j = {{"lowercase", c.normalizer.lowercase},
                      {"strip_accents", c.normalizer.strip_accents},
                      {"clean_text", c.normalizer.clean_text},
                      {"handle_chinese_chars", c.normalizer.handle_chinese_chars},
                      {"max_input_chars_per_word", c.max_input_chars_per_word},
                      {"continuing_prefix", c.continuing_prefix},
                      {"vocab_size", vocab.size()}};
  return j.dump();
}

// ---------------------------------------------------------------------------------------------------
// ShardWriter

ShardWriter::ShardWriter(fs::path path, const wordpiece::Vocab& vocab) : path_(std::move(path)) {
  tmp_ = path_;
  tmp_ += ".tmp-" + std::to_string(::getpid());
  file_ = std::fopen(tmp_.c_str(), "wb");
  if (file_ == nullptr) {
    throw util::io_error("cannot create " + tmp_.string() + ": " + std::strerror(errno) +
                         " (check that the cache directory is writable)");
  }
  std::memcpy(header_.magic, kShardMagic, sizeof(kShardMagic));
  header_.version = kShardFormatVersion;
  header_.token_bytes = vocab.size() <= 65536 ? 2 : 4;
  header_.vocab_fingerprint = vocab.fingerprint();
  header_.vocab_size = static_cast<uint32_t>(vocab.size());
  std::string settings = tokenizer_settings_json(vocab);
  header_.settings_bytes = static_cast<uint32_t>(settings.size());
  buffer_.reserve(kWriteBuffer);
  // The header is rewritten at finish(); a placeholder reserves its bytes.
  ShardHeader blank{};
  if (std::fwrite(&blank, sizeof(blank), 1, file_) != 1) {
    throw util::io_error("cannot write " + tmp_.string() + ": " + std::strerror(errno));
  }
  write(settings.data(), settings.size());
  pad_to_8();
}

ShardWriter::~ShardWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!finished_) {
    std::error_code ec;
    fs::remove(tmp_, ec);
  }
}

void ShardWriter::write(const void* data, size_t n) {
  crc_ = crc_update(crc_, data, n);
  bytes_written_ += n;
  const auto* p = static_cast<const uint8_t*>(data);
  if (buffer_.size() + n > kWriteBuffer && !buffer_.empty()) {
    if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
      throw util::io_error("cannot write " + tmp_.string() + ": " + std::strerror(errno) +
                           " (is the disk full?)");
    }
    buffer_.clear();
  }
  buffer_.insert(buffer_.end(), p, p + n);
}

void ShardWriter::pad_to_8() {
  static const uint8_t zeros[8] = {};
  size_t pad = static_cast<size_t>(pad8(bytes_written_) - bytes_written_);
  if (pad > 0) write(zeros, pad);
}

void ShardWriter::add_sentence(const int32_t* ids, size_t n) {
  if (finished_) throw util::runtime_error("ShardWriter::add_sentence after finish()");
  if (n == 0) return;
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || static_cast<uint32_t>(ids[i]) >= header_.vocab_size) {
      throw util::input_error(path_.string() + ": token id " + std::to_string(ids[i]) +
                              " is outside the vocabulary of " + std::to_string(header_.vocab_size));
    }
  }
  if (header_.token_bytes == 2) {
    uint16_t tmp[512];
    for (size_t i = 0; i < n; i += 512) {
      size_t m = std::min<size_t>(512, n - i);
      for (size_t k = 0; k < m; ++k) tmp[k] = static_cast<uint16_t>(ids[i + k]);
      write(tmp, m * 2);
    }
  } else {
    static_assert(sizeof(int32_t) == sizeof(uint32_t));
    write(ids, n * 4);
  }
  num_tokens_ += n;
  sentence_offsets_.push_back(num_tokens_);
}

void ShardWriter::end_document() {
  uint64_t sentences = sentence_offsets_.size() - 1;
  if (sentences > doc_offsets_.back()) doc_offsets_.push_back(sentences);
}

void ShardWriter::finish() {
  if (finished_) return;
  end_document();
  pad_to_8();
  write(sentence_offsets_.data(), sentence_offsets_.size() * sizeof(uint64_t));
  write(doc_offsets_.data(), doc_offsets_.size() * sizeof(uint64_t));
  header_.num_tokens = num_tokens_;
  header_.num_sentences = sentence_offsets_.size() - 1;
  header_.num_documents = doc_offsets_.size() - 1;
  header_.payload_bytes = bytes_written_;
  header_.payload_crc32 = crc_;
  header_.header_crc32 = header_crc(header_);
  auto fail = [&](const char* what) {
    throw util::io_error(std::string("cannot ") + what + " " + tmp_.string() + ": " +
                         std::strerror(errno) + " (is the disk full?)");
  };
  if (!buffer_.empty() && std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
    fail("write");
  }
  buffer_.clear();
  if (std::fseek(file_, 0, SEEK_SET) != 0) fail("seek in");
  if (std::fwrite(&header_, sizeof(header_), 1, file_) != 1) fail("write");
  if (std::fflush(file_) != 0) fail("flush");
  if (::fsync(::fileno(file_)) != 0) fail("fsync");
  std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  fs::rename(tmp_, path_, ec);
  if (ec) {
    fs::remove(tmp_, ec);
    throw util::io_error("cannot rename " + tmp_.string() + " to " + path_.string() + ": " + ec.message());
  }
  util::fsync_path(path_.has_parent_path() ? path_.parent_path() : fs::path("."));
  finished_ = true;
}

// ---------------------------------------------------------------------------------------------------
// Shard

std::shared_ptr<const Shard> Shard::open(const fs::path& path, uint64_t expected_fingerprint,
                                         bool verify_payload) {
  std::shared_ptr<Shard> s(new Shard());
  s->path_ = path;
  s->file_ = std::make_unique<util::MappedFile>(path);
  const std::string name = path.string();
  auto bad = [&](const std::string& what) {
    return util::input_error("shard " + name + ": " + what +
                             "; delete it (or its cache directory) to have it rebuilt");
  };
  const uint64_t size = s->file_->size();
  if (size < sizeof(ShardHeader)) {
    throw bad("file is " + std::to_string(size) + " bytes, shorter than the header (truncated?)");
  }
  ShardHeader& h = s->header_;
  std::memcpy(&h, s->file_->data(), sizeof(h));
  if (std::memcmp(h.magic, kShardMagic, sizeof(kShardMagic)) != 0) throw bad("not a token shard (bad magic)");
  if (h.version != kShardFormatVersion) {
    throw bad("format version " + std::to_string(h.version) + ", this build reads version " +
              std::to_string(kShardFormatVersion));
  }
  if (h.header_crc32 != header_crc(h)) throw bad("header checksum mismatch (corrupted)");
  if (h.token_bytes != 2 && h.token_bytes != 4) throw bad("bad token width " + std::to_string(h.token_bytes));
  if (h.payload_bytes != size - sizeof(ShardHeader)) {
    throw bad("file is " + std::to_string(size) + " bytes but the header expects " +
              std::to_string(h.payload_bytes + sizeof(ShardHeader)) + " (truncated or appended to)");
  }
  // Each section must fit in what is left of the payload: checked by division, since counts from a
  // corrupted header can be large enough for their byte sizes to wrap around 2^64.
  uint64_t used = 0;  // payload bytes accounted for so far
  auto take = [&](uint64_t count, uint64_t size) {  // returns where the section starts
    if (count > (h.payload_bytes - used) / size) throw bad("counts do not match the file size");
    const uint64_t begin = used;
    used += count * size;
    return begin;
  };
  take(pad8(h.settings_bytes), 1);
  const uint64_t tok_off = take(h.num_tokens, h.token_bytes);
  take(pad8(used) - used, 1);  // the ids are padded to 8 bytes
  const uint64_t sent_off = take(h.num_sentences, 8);
  take(1, 8);  // num_sentences + 1 offsets
  const uint64_t doc_off = take(h.num_documents, 8);
  take(1, 8);  // num_documents + 1 offsets
  if (used != h.payload_bytes) throw bad("counts do not match the file size");
  if (expected_fingerprint != 0 && h.vocab_fingerprint != expected_fingerprint) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "made with vocab fingerprint %016llx, but the vocab in use is %016llx",
                  static_cast<unsigned long long>(h.vocab_fingerprint),
                  static_cast<unsigned long long>(expected_fingerprint));
    throw bad(buf);
  }
  const uint8_t* payload = s->file_->data() + sizeof(ShardHeader);
  if (verify_payload && crc_update(0, payload, h.payload_bytes) != h.payload_crc32) {
    throw bad("payload checksum mismatch (corrupted)");
  }
  if (h.token_bytes == 2) s->tokens16_ = reinterpret_cast<const uint16_t*>(payload + tok_off);
  else s->tokens32_ = reinterpret_cast<const uint32_t*>(payload + tok_off);
  s->sentence_offsets_ = reinterpret_cast<const uint64_t*>(payload + sent_off);
  s->doc_offsets_ = reinterpret_cast<const uint64_t*>(payload + doc_off);
  // Offsets index into the token array at training time: check them once so a corrupted shard that
  // slipped past (verify_payload = false) cannot read out of bounds.
  if (s->sentence_offsets_[0] != 0 || s->sentence_offsets_[h.num_sentences] != h.num_tokens ||
      s->doc_offsets_[0] != 0 || s->doc_offsets_[h.num_documents] != h.num_sentences) {
    throw bad("inconsistent sentence/document offsets");
  }
  for (uint64_t i = 0; i < h.num_sentences; ++i) {
    if (s->sentence_offsets_[i] >= s->sentence_offsets_[i + 1]) throw bad("inconsistent sentence offsets");
  }
  for (uint64_t i = 0; i < h.num_documents; ++i) {
    if (s->doc_offsets_[i] >= s->doc_offsets_[i + 1]) throw bad("inconsistent document offsets");
  }
  return s;
}

std::string Shard::settings_json() const {
  const char* p = reinterpret_cast<const char*>(file_->data() + sizeof(ShardHeader));
  return std::string(p, header_.settings_bytes);
}

void Shard::copy_tokens(uint64_t begin, uint64_t n, int64_t* out) const {
  // The running max costs little and keeps a shard corrupted after open() (verify_payload = false)
  // from indexing past per-id tables downstream.
  uint32_t max_id = 0;
  if (header_.token_bytes == 2) {
    const uint16_t* p = tokens16_ + begin;
    for (uint64_t i = 0; i < n; ++i) {
      out[i] = p[i];
      max_id = std::max<uint32_t>(max_id, p[i]);
    }
  } else {
    const uint32_t* p = tokens32_ + begin;
    for (uint64_t i = 0; i < n; ++i) {
      out[i] = p[i];
      max_id = std::max(max_id, p[i]);
    }
  }
  if (n > 0 && max_id >= header_.vocab_size) {
    throw util::input_error("shard " + path_.string() + ": token id " + std::to_string(max_id) +
                            " near token " + std::to_string(begin) + " is outside the vocabulary of " +
                            std::to_string(header_.vocab_size) + " (corrupted shard?); delete it to have it rebuilt");
  }
}

}  // namespace bert::data
