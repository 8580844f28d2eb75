// Parallel chunked tokenization into shards, and the cache that keys them on file + vocab.
#include "data/shard_builder.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/shard.h"
#include "util/atomic_file.h"
#include "util/dir_lock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/signals.h"

namespace bert::data {
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kFullHashLimit = uint64_t{256} << 20;
constexpr const char* kManifest = "manifest.json";

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint32_t crc_of_range(std::ifstream& in, uint64_t offset, uint64_t n, uint32_t crc, std::vector<char>& buf) {
  in.seekg(static_cast<std::streamoff>(offset));
  while (n > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, buf.size()));
    in.read(buf.data(), static_cast<std::streamsize>(want));
    size_t got = static_cast<size_t>(in.gcount());
    if (got == 0) break;
    crc = static_cast<uint32_t>(crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(got)));
    n -= got;
  }
  in.clear();
  return crc;
}

std::string shard_name(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "shard-%05zu.bin", i);
  return buf;
}

nlohmann::json manifest_json(const SourceShards& s, const SourceKey& key, const wordpiece::Vocab& vocab) {
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& p : s.shards) shards.push_back(p.filename().string());
  return {{"format", "bert-token-shards"},
          {"format_version", kShardFormatVersion},
          {"source", fs::absolute(s.source).string()},
          {"source_size", key.size},
          {"source_mtime_ns", key.mtime_ns},
          {"source_crc32", key.content_crc},
          {"vocab_fingerprint", hex64(vocab.fingerprint())},
          {"tokenizer", nlohmann::json::parse(tokenizer_settings_json(vocab))},
          {"shards", shards},
          {"tokens", s.tokens},
          {"sentences", s.sentences},
          {"documents", s.documents},
          {"lines", s.read.lines},
          {"bad_lines", s.read.bad_lines}};
}

// Why the manifest does not describe (key, vocab), or "" when it does.
std::string stale_reason(const nlohmann::json& m, const SourceKey& key, const wordpiece::Vocab& vocab) {
  if (m.value("format", "") != "bert-token-shards") return "the manifest is not a shard manifest";
  if (m.value("format_version", 0u) != kShardFormatVersion) {
    return "it was written in shard format version " + std::to_string(m.value("format_version", 0u)) +
           " and this build uses version " + std::to_string(kShardFormatVersion);
  }
  if (m.value("vocab_fingerprint", "") != hex64(vocab.fingerprint())) {
    return "it was tokenized with another vocabulary (fingerprint " + m.value("vocab_fingerprint", "?") +
           ", current " + hex64(vocab.fingerprint()) + ")";
  }
  if (m.value("source_size", uint64_t{0}) != key.size || m.value("source_mtime_ns", int64_t{0}) != key.mtime_ns ||
      m.value("source_crc32", uint32_t{0}) != key.content_crc) {
    return "the source file changed since (size " + std::to_string(m.value("source_size", uint64_t{0})) +
           " -> " + std::to_string(key.size) + ", or its modification time or content)";
  }
  return "";
}

}  // namespace

SourceKey source_key(const fs::path& source) {
  struct stat st {};
  if (::stat(source.c_str(), &st) != 0) {
    throw util::input_error("cannot read corpus " + source.string() + ": " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) throw util::input_error(source.string() + " is a directory; pass a corpus file");
  SourceKey key;
  key.size = static_cast<uint64_t>(st.st_size);
  key.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  std::ifstream in(source, std::ios::binary);
  if (!in) throw util::input_error("cannot open corpus " + source.string() + ": " + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  uint32_t crc = 0;
  if (key.size <= kFullHashLimit) {
    crc = crc_of_range(in, 0, key.size, crc, buf);
  } else {
    constexpr uint64_t kEdge = 1 << 20, kBlock = 64 << 10;
    crc = crc_of_range(in, 0, kEdge, crc, buf);
    for (uint64_t i = 1; i <= 16; ++i) crc = crc_of_range(in, key.size / 17 * i, kBlock, crc, buf);
    crc = crc_of_range(in, key.size - kEdge, kEdge, crc, buf);
  }
  key.content_crc = crc;
  return key;
}

SourceShards build_shards(const fs::path& source, const wordpiece::Tokenizer& tokenizer,
                          const fs::path& out_dir, const ShardBuildOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const wordpiece::Vocab& vocab = tokenizer.vocab();
  SourceShards result;
  result.source = source;
  result.entry_dir = out_dir;
  CorpusReader reader(source, options.on_bad_line);
  std::unique_ptr<ShardWriter> writer;
  auto close_writer = [&] {
    if (!writer) return;
    writer->finish();
    result.shards.push_back(writer->path());
    writer.reset();
  };

  // One chunk: whole documents up to chunk_bytes of text, tokenized together across threads.
  std::vector<std::string> texts;
  std::vector<size_t> doc_ends;  // index into texts one past each document's last sentence
  std::vector<std::string> doc;
  size_t chunk_bytes = 0;
  auto flush_chunk = [&] {
    if (texts.empty()) return;
    // A stop request (Ctrl-C) ends a long tokenization here; the unfinished cache entry is dropped
    // with its temporary directory, and every entry finished before stays.
    if (const int sig = util::stop_signal(); sig != 0) {
      throw util::Error(util::ErrorKind::kInterrupted,
                        "stopped by signal " + std::to_string(sig) + " while tokenizing " + source.string() +
                            "; nothing was trained or saved yet (files tokenized before are cached); rerun to continue");
    }
    std::vector<std::vector<int32_t>> ids = tokenizer.encode_batch(texts, options.threads);
    size_t s = 0;
    for (size_t end : doc_ends) {
      if (!writer) writer = std::make_unique<ShardWriter>(out_dir / shard_name(result.shards.size()), vocab);
      for (; s < end; ++s) {
        if (ids[s].empty()) continue;
        writer->add_sentence(ids[s]);
        result.tokens += ids[s].size();
        ++result.sentences;
      }
      uint64_t before = writer->num_documents();
      writer->end_document();
      result.documents += writer->num_documents() - before;
      if (writer->num_tokens() >= options.shard_max_tokens ||
          writer->num_sentences() >= options.shard_max_sentences) {
        close_writer();
      }
    }
    texts.clear();
    doc_ends.clear();
    chunk_bytes = 0;
  };
  while (reader.next_document(doc)) {
    for (auto& sentence : doc) {
      chunk_bytes += sentence.size();
      texts.push_back(std::move(sentence));
    }
    doc_ends.push_back(texts.size());
    if (chunk_bytes >= options.chunk_bytes) flush_chunk();
  }
  flush_chunk();
  // An empty corpus still gets one (empty) shard, so the cache remembers it was read.
  if (!writer && result.shards.empty()) writer = std::make_unique<ShardWriter>(out_dir / shard_name(0), vocab);
  close_writer();
  result.read = reader.stats();
  result.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

SourceShards build_or_reuse_shards(const fs::path& source, const wordpiece::Tokenizer& tokenizer,
                                   const ShardBuildOptions& options) {
  if (options.on_stale_cache != "rebuild" && options.on_stale_cache != "error") {
    throw util::usage_error("data.on_stale_cache must be \"rebuild\" or \"error\", got \"" +
                            options.on_stale_cache + "\"");
  }
  if (options.cache_dir.empty()) throw util::usage_error("data.cache_dir is empty; name a directory for token shards");
  const wordpiece::Vocab& vocab = tokenizer.vocab();
  const SourceKey key = source_key(source);
  std::error_code ec;
  fs::create_directories(options.cache_dir, ec);
  if (ec) {
    throw util::io_error("cannot create cache directory " + options.cache_dir.string() + ": " + ec.message());
  }
  const fs::path abs = fs::weakly_canonical(fs::absolute(source), ec);
  // One entry per (corpus file, vocabulary): runs with different vocabularies can share a cache dir.
  const fs::path entry = options.cache_dir / (source.filename().string() + "-" +
                                              hex64(util::hash_name(abs.string())).substr(0, 12) + "-" +
                                              hex64(vocab.fingerprint()).substr(0, 8));
  // Processes sharing the cache (ranks, concurrent runs) check and build entries one at a time
  // (cache_dir/.lock): the second waits, then reuses what the first wrote, instead of racing it on
  // the rename. (One lock file for the dir: lock files are never deleted, which flock needs.)
  const util::DirLock lock = util::DirLock::wait_for(options.cache_dir / ".lock", "tokenizing " + source.string());

  std::string reason;
  if (fs::exists(entry / kManifest, ec)) {
    nlohmann::json m;
    try {
      m = util::parse_json_file(entry / kManifest, util::ErrorKind::kInput);
    } catch (const util::Error& e) {
      reason = std::string("its manifest is unreadable: ") + e.what();
    }
    if (reason.empty()) {
      std::string stale;
      try {
        stale = stale_reason(m, key, vocab);
      } catch (const nlohmann::json::exception& e) {
        stale = std::string("its manifest is malformed: ") + e.what();
      }
      if (!stale.empty() && options.on_stale_cache == "error") {
        throw util::input_error("token shards in " + entry.string() + " for " + source.string() +
                                " are stale: " + stale +
                                ". Delete that directory or set data.on_stale_cache=\"rebuild\"");
      }
      reason = stale;
    }
    if (reason.empty()) {
      SourceShards cached;
      cached.source = source;
      cached.entry_dir = entry;
      cached.reused = true;
      try {
        for (const auto& name : m.at("shards")) {
          fs::path p = entry / name.get<std::string>();
          auto shard = Shard::open(p, vocab.fingerprint(), /*verify_payload=*/true);
          cached.tokens += shard->num_tokens();
          cached.sentences += shard->num_sentences();
          cached.documents += shard->num_documents();
          cached.shards.push_back(p);
        }
        cached.read.lines = m.value("lines", uint64_t{0});
        cached.read.bad_lines = m.value("bad_lines", uint64_t{0});
        return cached;
      } catch (const std::exception& e) {
        reason = e.what();
        util::log_error("cached token shards for " + source.string() + " are damaged, rebuilding them: " + reason);
      }
    } else {
      util::log_warn("rebuilding token shards for " + source.string() + ": " + reason);
    }
  }

  util::log_info("tokenizing " + source.string() + " (" + std::to_string(key.size >> 20) + " MiB) into " +
                 entry.string());
  util::AtomicDir dir(entry);
  SourceShards built = build_shards(source, tokenizer, dir.tmp_path(), options);
  built.rebuild_reason = reason;
  util::write_file_atomic(dir.tmp_path() / kManifest, manifest_json(built, key, vocab).dump(2) + "\n");
  dir.commit();
  built.entry_dir = entry;
  for (auto& p : built.shards) p = entry / p.filename();
  if (built.read.bad_lines > 0) {
    util::log_warn(source.string() + ": skipped " + std::to_string(built.read.bad_lines) + " bad JSONL line(s)");
  }
  return built;
}

}  // namespace bert::data
