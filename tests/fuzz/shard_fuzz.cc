// Fuzzes the token-shard reader (data::Shard::open and its accessors).
// Input: byte 0 = mode, then the shard file's bytes. Mode bit 0: recompute the header checksum,
// bit 1: recompute the payload checksum (so mutations get past the CRCs and reach the structural
// checks), bit 2: open with verify_payload = false (the trusted-cache path), bit 3: pass an expected
// vocab fingerprint (the one in the header when bit 4 is clear, another one otherwise).
// Invariants, once open() accepted the file: sentence and document offsets are within the file and
// increasing, every token of every sentence can be read, and copy_tokens either returns ids below
// vocab_size or throws Error.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "data/shard.h"
#include "fuzz_util.h"
#include "util/error.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bert::fuzz::quiet_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bert::data::ShardHeader;
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  ShardHeader h{};
  const bool has_header = file.size() >= sizeof(ShardHeader);
  if (has_header) std::memcpy(&h, file.data(), sizeof(h));
  if (has_header && (mode & 2)) {
    const auto* payload = reinterpret_cast<const Bytef*>(file.data() + sizeof(ShardHeader));
    h.payload_crc32 = static_cast<uint32_t>(crc32(0, payload, static_cast<uInt>(file.size() - sizeof(h))));
  }
  if (has_header && (mode & 1)) {
    h.header_crc32 = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(&h),
                                                 offsetof(ShardHeader, header_crc32)));
  }
  if (has_header) std::memcpy(file.data(), &h, sizeof(h));
  const uint64_t expected = !(mode & 8) ? 0 : (mode & 16) ? h.vocab_fingerprint ^ 1 : h.vocab_fingerprint;
  const auto path = bert::fuzz::write_scratch("fuzz.shard", file);

  std::shared_ptr<const bert::data::Shard> shard;
  try {
    shard = bert::data::Shard::open(path, expected, /*verify_payload=*/!(mode & 4));
  } catch (const bert::util::Error&) {
    return 0;
  }
  BERT_FUZZ_CHECK(expected == 0 || shard->vocab_fingerprint() == expected);
  const uint64_t n_tok = shard->num_tokens(), n_sent = shard->num_sentences(), n_doc = shard->num_documents();
  BERT_FUZZ_CHECK(n_tok <= file.size() / shard->token_bytes());
  BERT_FUZZ_CHECK(n_sent <= file.size() / 8 && n_doc <= file.size() / 8);
  (void)shard->settings_json();
  BERT_FUZZ_CHECK(shard->sentence_begin(0) == 0 && shard->sentence_begin(n_sent) == n_tok);
  BERT_FUZZ_CHECK(shard->document_sentence(0) == 0 && shard->document_sentence(n_doc) == n_sent);
  std::vector<int64_t> ids;
  for (uint64_t s = 0; s < n_sent; ++s) {
    const uint64_t b = shard->sentence_begin(s), e = shard->sentence_begin(s + 1);
    BERT_FUZZ_CHECK(b < e && e <= n_tok);
    ids.assign(e - b, -1);
    try {
      shard->copy_tokens(b, e - b, ids.data());
      for (int64_t id : ids) BERT_FUZZ_CHECK(id >= 0 && id < shard->vocab_size());
    } catch (const bert::util::Error&) {
    }
    for (uint64_t i = b; i < e; ++i) (void)shard->token(i);
  }
  for (uint64_t d = 0; d < n_doc; ++d) {
    BERT_FUZZ_CHECK(shard->document_sentence(d) < shard->document_sentence(d + 1));
    BERT_FUZZ_CHECK(shard->document_begin(d) < n_tok);
  }
  return 0;
}
