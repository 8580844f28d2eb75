// The token shard file: a binary, memory-mappable container of token ids with sentence and document
// boundaries, tied to the vocabulary that produced it. ShardWriter streams it out, Shard reads it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "util/mapped_file.h"
#include "wordpiece/vocab.h"

namespace bert::data {

// On-disk layout (little-endian), version kShardFormatVersion:
//   [ShardHeader, 128 bytes]
//   [settings JSON: tokenizer settings of the vocab, padded to 8 bytes]
//   [token ids: num_tokens x token_bytes (2 when the vocab has <= 65536 ids, else 4), padded to 8]
//   [sentence offsets: (num_sentences + 1) x uint64, token index where each sentence starts]
//   [document offsets: (num_documents + 1) x uint64, sentence index where each document starts]
// payload_crc32 covers everything after the header; header_crc32 covers the header before it.
inline constexpr uint32_t kShardFormatVersion = 1;
inline constexpr char kShardMagic[8] = {'B', 'E', 'R', 'T', 'S', 'H', 'R', 'D'};

struct ShardHeader {
  char magic[8];
  uint32_t version;
  uint32_t token_bytes;         // 2 or 4
  uint64_t vocab_fingerprint;   // wordpiece::Vocab::fingerprint() of the vocab used
  uint32_t vocab_size;          // every id is < vocab_size
  uint32_t settings_bytes;      // length of the settings JSON (unpadded)
  uint64_t num_tokens;
  uint64_t num_sentences;
  uint64_t num_documents;
  uint64_t payload_bytes;       // file size - sizeof(ShardHeader)
  uint32_t payload_crc32;       // zlib crc32 of the payload
  uint32_t header_crc32;        // zlib crc32 of the header bytes before this field
  uint8_t reserved[56];
};
static_assert(sizeof(ShardHeader) == 128, "the shard header is 128 bytes on disk");

// The tokenizer settings of `vocab` as compact JSON (stored in each shard's header for inspection).
std::string tokenizer_settings_json(const wordpiece::Vocab& vocab);

// Streams one shard to disk: tokens go straight to a temporary file as they arrive, so memory holds
// only the sentence/document offsets of this shard. finish() writes the header, fsyncs and renames the
// file into place; a writer destroyed before finish() removes its temporary, leaving no partial shard.
//   ShardWriter w(path, vocab);  w.add_sentence(ids);  w.end_document();  w.finish();
class ShardWriter {
 public:
  // Opens `<path>.tmp-<pid>`. Throws Error(kIo) naming it if it cannot be created.
  ShardWriter(std::filesystem::path path, const wordpiece::Vocab& vocab);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends one sentence (ignored when empty). Throws Error(kInput) for an id outside the vocab.
  void add_sentence(const int32_t* ids, size_t n);
  void add_sentence(const std::vector<int32_t>& ids) { add_sentence(ids.data(), ids.size()); }
  // Closes the current document (a no-op when it has no sentence: empty documents are not stored).
  void end_document();
  // Closes an open document, writes offsets and header, fsyncs and renames into place. Error(kIo).
  void finish();

  uint64_t num_tokens() const { return num_tokens_; }
  uint64_t num_documents() const { return doc_offsets_.size() - 1; }
  uint64_t num_sentences() const { return sentence_offsets_.size() - 1; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void write(const void* data, size_t n);
  void pad_to_8();

  std::filesystem::path path_;
  std::filesystem::path tmp_;
  std::FILE* file_ = nullptr;
  ShardHeader header_{};
  uint32_t crc_ = 0;
  uint64_t bytes_written_ = 0;  // payload bytes so far
  uint64_t num_tokens_ = 0;
  std::vector<uint64_t> sentence_offsets_{0};
  std::vector<uint64_t> doc_offsets_{0};
  std::vector<uint8_t> buffer_;
  bool finished_ = false;
};

// A shard opened read-only through util::MappedFile: token access reads the page cache in place.
class Shard {
 public:
  // Opens and validates `path`: magic, version, sizes against the file size, header checksum, and
  // (when verify_payload) the payload checksum. When expected_fingerprint != 0 the shard must have been
  // made with that vocab. Throws Error(kInput) naming the file and what is wrong.
  static std::shared_ptr<const Shard> open(const std::filesystem::path& path,
                                           uint64_t expected_fingerprint = 0,
                                           bool verify_payload = true);

  uint64_t num_tokens() const { return header_.num_tokens; }
  uint64_t num_sentences() const { return header_.num_sentences; }
  uint64_t num_documents() const { return header_.num_documents; }
  uint64_t vocab_fingerprint() const { return header_.vocab_fingerprint; }
  uint32_t vocab_size() const { return header_.vocab_size; }
  uint32_t token_bytes() const { return header_.token_bytes; }
  uint32_t payload_crc32() const { return header_.payload_crc32; }
  std::string settings_json() const;
  const std::filesystem::path& path() const { return path_; }

  int32_t token(uint64_t i) const {
    return header_.token_bytes == 2 ? static_cast<int32_t>(tokens16_[i])
                                    : static_cast<int32_t>(tokens32_[i]);
  }
  // Copies tokens [begin, begin + n) into out[0..n) as int64.
  void copy_tokens(uint64_t begin, uint64_t n, int64_t* out) const;
  // Token index where sentence s starts; s == num_sentences() gives num_tokens().
  uint64_t sentence_begin(uint64_t s) const { return sentence_offsets_[s]; }
  // Sentence index where document d starts; d == num_documents() gives num_sentences().
  uint64_t document_sentence(uint64_t d) const { return doc_offsets_[d]; }
  // Token index where document d starts.
  uint64_t document_begin(uint64_t d) const { return sentence_offsets_[doc_offsets_[d]]; }

 private:
  Shard() = default;

  std::filesystem::path path_;
  std::unique_ptr<util::MappedFile> file_;
  ShardHeader header_{};
  const uint16_t* tokens16_ = nullptr;
  const uint32_t* tokens32_ = nullptr;
  const uint64_t* sentence_offsets_ = nullptr;
  const uint64_t* doc_offsets_ = nullptr;
};

}  // namespace bert::data
