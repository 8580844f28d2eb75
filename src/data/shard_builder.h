// Corpus file -> token shards, cached: tokenizes a raw corpus in parallel chunks with the vocab's own
// settings, streams the ids into shards of bounded size, and reuses them while the file and vocab match.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/corpus_reader.h"
#include "wordpiece/tokenizer.h"

namespace bert::data {

struct ShardBuildOptions {
  std::filesystem::path cache_dir;            // where <file>-<hash>/ entries live
  std::string on_stale_cache = "rebuild";     // "rebuild" | "error" when the file or vocab changed
  std::string on_bad_line = "skip";           // JSONL lines: "skip" | "fail"
  int threads = 0;                            // tokenizer threads; 0 = all cores
  uint64_t shard_max_tokens = uint64_t{1} << 25;     // a new shard starts after this many tokens
  uint64_t shard_max_sentences = uint64_t{1} << 22;  // ... or sentences (bounds the offsets in memory)
  size_t chunk_bytes = size_t{4} << 20;       // raw text tokenized per parallel batch (memory bound)
};

// What build_or_reuse_shards found or did for one source file.
struct SourceShards {
  std::filesystem::path source;
  std::filesystem::path entry_dir;              // cache entry holding the shards
  std::vector<std::filesystem::path> shards;    // in corpus order
  bool reused = false;                          // true: taken from the cache, nothing tokenized
  std::string rebuild_reason;                   // why an existing entry was not reused ("" if none)
  uint64_t tokens = 0, sentences = 0, documents = 0;
  CorpusReadStats read;                         // when built: what the reader saw
  double build_seconds = 0;                     // when built: wall time
};

// Identity of a source file for the cache: size, mtime and a crc32 of its content (all of it up to
// 256 MiB; beyond that the first and last MiB and 16 evenly spaced 64 KiB blocks).
struct SourceKey {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t content_crc = 0;
};
SourceKey source_key(const std::filesystem::path& source);

// Tokenizes `source` into shards written into `out_dir` (which must exist) as shard-00000.bin, ...
// Memory stays bounded by options.chunk_bytes (text and its ids) plus one shard's offsets
// (8 bytes x shard_max_sentences), however large the file. Returns the built shards.
// Throws Error(kInput) for unreadable input or a bad JSONL line under on_bad_line "fail", Error(kIo)
// when writing fails.
SourceShards build_shards(const std::filesystem::path& source, const wordpiece::Tokenizer& tokenizer,
                          const std::filesystem::path& out_dir, const ShardBuildOptions& options);

// The cached shards of `source` for the tokenizer's vocab. An entry is reused when its manifest
// matches the file's SourceKey, the vocab fingerprint and the shard format version and every shard
// passes its checksum; otherwise it is rebuilt atomically (the old entry stays valid until the new one
// is complete). A stale entry (file or vocab changed) under on_stale_cache "error" throws Error(kInput)
// saying what changed; a corrupted one is always rebuilt with an error logged.
SourceShards build_or_reuse_shards(const std::filesystem::path& source,
                                   const wordpiece::Tokenizer& tokenizer,
                                   const ShardBuildOptions& options);

}  // namespace bert::data
