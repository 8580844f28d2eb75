// Shard format: round trips at both token widths, and clear errors for truncated, corrupted or
// foreign-vocab shards.
#include "data/shard.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstddef>
#include <fstream>
#include <functional>

#include "test_util.h"
#include "util/error.h"

namespace bert::data {
namespace {
using testing::Doc;
using testing::TempDir;

std::string error_of(const std::function<void()>& f, util::ErrorKind* kind = nullptr) {
  try {
    f();
  } catch (const util::Error& e) {
    if (kind) *kind = e.kind();
    return e.what();
  }
  return "";
}

void flip_byte(const fs::path& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

TEST(DataShard, RoundTripKeepsTokensSentencesAndDocuments) {
  TempDir dir;
  auto vocab = testing::make_vocab();
  std::vector<Doc> docs = {{{6, 7, 8}, {9}}, {{10, 11}}, {{12}, {13, 14}, {15, 16, 17, 18}}};
  testing::write_shard(dir / "a.bin", *vocab, docs);
  auto s = Shard::open(dir / "a.bin", vocab->fingerprint());
  EXPECT_EQ(s->token_bytes(), 2u);
  EXPECT_EQ(s->num_tokens(), 13u);
  EXPECT_EQ(s->num_sentences(), 6u);
  EXPECT_EQ(s->num_documents(), 3u);
  EXPECT_EQ(s->vocab_size(), static_cast<uint32_t>(vocab->size()));
  std::vector<int32_t> all;
  for (uint64_t i = 0; i < s->num_tokens(); ++i) all.push_back(s->token(i));
  EXPECT_EQ(all, (std::vector<int32_t>{6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}));
  EXPECT_EQ(s->sentence_begin(0), 0u);
  EXPECT_EQ(s->sentence_begin(1), 3u);
  EXPECT_EQ(s->sentence_begin(2), 4u);
  EXPECT_EQ(s->sentence_begin(6), 13u);
  EXPECT_EQ(s->document_sentence(1), 2u);
  EXPECT_EQ(s->document_begin(2), 6u);
  EXPECT_EQ(s->document_begin(3), 13u);
  std::vector<int64_t> out(4);
  s->copy_tokens(5, 4, out.data());
  EXPECT_EQ(out, (std::vector<int64_t>{11, 12, 13, 14}));
  EXPECT_NE(s->settings_json().find("\"lowercase\":true"), std::string::npos);
}

TEST(DataShard, WideVocabUsesFourByteIds) {
  TempDir dir;
  auto vocab = testing::make_vocab(70000, 0);
  std::vector<Doc> docs = {{{6, 65535, 65536, 70005}}, {{69999}}};
  testing::write_shard(dir / "w.bin", *vocab, docs);
  auto s = Shard::open(dir / "w.bin", vocab->fingerprint());
  EXPECT_EQ(s->token_bytes(), 4u);
  ASSERT_EQ(s->num_tokens(), 5u);
  EXPECT_EQ(s->token(1), 65535);
  EXPECT_EQ(s->token(2), 65536);
  EXPECT_EQ(s->token(3), 70005);
  EXPECT_EQ(s->token(4), 69999);
}

TEST(DataShard, EmptySentencesAndDocumentsAreNotStored) {
  TempDir dir;
  auto vocab = testing::make_vocab();
  ShardWriter w(dir / "e.bin", *vocab);
  w.end_document();
  w.add_sentence(std::vector<int32_t>{});
  w.end_document();
  w.add_sentence(std::vector<int32_t>{7});
  w.end_document();
  w.end_document();
  w.finish();
  auto s = Shard::open(dir / "e.bin");
  EXPECT_EQ(s->num_documents(), 1u);
  EXPECT_EQ(s->num_sentences(), 1u);
  EXPECT_EQ(s->num_tokens(), 1u);
}

TEST(DataShard, UnfinishedWriterLeavesNothingBehind) {
  TempDir dir;
  auto vocab = testing::make_vocab();
  {
    ShardWriter w(dir / "u.bin", *vocab);
    w.add_sentence(std::vector<int32_t>{6, 7});
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(DataShard, IdOutsideVocabIsRejectedAtWrite) {
  TempDir dir;
  auto vocab = testing::make_vocab();
  ShardWriter w(dir / "x.bin", *vocab);
  util::ErrorKind kind{};
  std::string msg = error_of([&] { w.add_sentence(std::vector<int32_t>{6, vocab->size()}); }, &kind);
  EXPECT_EQ(kind, util::ErrorKind::kInput);
  EXPECT_NE(msg.find("outside the vocabulary"), std::string::npos) << msg;
}

TEST(DataShard, TruncatedShardIsAClearInputError) {
  TempDir dir;
  auto vocab = testing::make_vocab();
  testing::write_shard(dir / "t.bin", *vocab, testing::random_docs(1, 20, 1, 5, 1, 20));
  fs::resize_file(dir / "t.bin", fs::file_size(dir / "t.bin") - 8);
  util::ErrorKind kind{};
  std::string msg = error_of([&] { Shard::open(dir / "t.bin"); }, &kind);
  EXPECT_EQ(kind, util::ErrorKind::kInput);
  EXPECT_NE(msg.find("t.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  fs::resize_file(dir / "t.bin", 50);
  msg = error_of([&] { Shard::open(dir / "t.bin"); });
  EXPECT_NE(msg.find("shorter than the header"), std::string::npos) << msg;
}

TEST(DataShard, CorruptedPayloadFailsTheChecksum) {
  TempDir dir;
  auto vocab = testing::make_vocab();
  testing::write_shard(dir / "c.bin", *vocab, testing::random_docs(2, 20, 1, 5, 1, 20));
  flip_byte(dir / "c.bin", sizeof(ShardHeader) + 100);
  std::string msg = error_of([&] { Shard::open(dir / "c.bin"); });
  EXPECT_NE(msg.find("payload checksum mismatch"), std::string::npos) << msg;
  flip_byte(dir / "c.bin", sizeof(ShardHeader) + 100);  // undo
  EXPECT_NO_THROW(Shard::open(dir / "c.bin"));
  flip_byte(dir / "c.bin", 20);  // inside the header
  msg = error_of([&] { Shard::open(dir / "c.bin"); });
  EXPECT_NE(msg.find("header checksum"), std::string::npos) << msg;
}

TEST(DataShard, CorruptedTokensAreCaughtWhenReadWithoutVerification) {
  TempDir dir;
  auto vocab = testing::make_vocab();
  testing::write_shard(dir / "k.bin", *vocab, {{{6, 7, 8, 9}}});
  auto s0 = Shard::open(dir / "k.bin");
  const uint64_t tok = sizeof(ShardHeader) + ((s0->settings_json().size() + 7) & ~size_t{7});
  s0.reset();
  flip_byte(dir / "k.bin", tok + 3);  // high byte of token 1: id 7 ^ 0x5a00
  auto s = Shard::open(dir / "k.bin", 0, /*verify_payload=*/false);
  std::vector<int64_t> out(4);
  std::string msg = error_of([&] { s->copy_tokens(0, 4, out.data()); });
  EXPECT_NE(msg.find("outside the vocabulary"), std::string::npos) << msg;
}

TEST(DataShard, ShardOfAnotherVocabIsRefused) {
  TempDir dir;
  auto vocab = testing::make_vocab();
  auto other = testing::make_vocab(201);
  ASSERT_NE(vocab->fingerprint(), other->fingerprint());
  testing::write_shard(dir / "v.bin", *vocab, {{{6, 7}}});
  util::ErrorKind kind{};
  std::string msg = error_of([&] { Shard::open(dir / "v.bin", other->fingerprint()); }, &kind);
  EXPECT_EQ(kind, util::ErrorKind::kInput);
  EXPECT_NE(msg.find("vocab fingerprint"), std::string::npos) << msg;
}

// Rewrites the header through `edit` and recomputes its checksum (the payload is untouched).
void edit_header(const fs::path& path, const std::function<void(ShardHeader&)>& edit) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ShardHeader h{};
  f.read(reinterpret_cast<char*>(&h), sizeof(h));
  edit(h);
  h.header_crc32 = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(&h), offsetof(ShardHeader, header_crc32)));
  f.seekp(0);
  f.write(reinterpret_cast<const char*>(&h), sizeof(h));
}

// Found by tests/fuzz/shard_fuzz: counts whose byte sizes wrap around 2^64 matched the file size,
// and open() then read offsets far outside the mapping (a crash, or pointer-overflow UB).
TEST(DataShard, CountsThatWrapAroundAreRefused) {
  TempDir dir;
  auto vocab = testing::make_vocab();  // 2-byte ids
  const std::vector<std::function<void(ShardHeader&)>> edits = {
      [](ShardHeader& h) { h.num_sentences += uint64_t{1} << 61; },  // (n + 1) * 8 wraps to the same size
      [](ShardHeader& h) { h.num_documents += uint64_t{1} << 61; },
      [](ShardHeader& h) { h.num_tokens += uint64_t{1} << 63; },     // n * 2 wraps to the same size
      [](ShardHeader& h) { h.num_documents = UINT64_MAX; },          // n + 1 wraps to 0
      [](ShardHeader& h) { h.settings_bytes = UINT32_MAX; },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    testing::write_shard(dir / "w.bin", *vocab, {{{6, 7, 8}, {9}}, {{10, 11}}});
    edit_header(dir / "w.bin", edits[i]);
    for (bool verify : {true, false}) {
      util::ErrorKind kind{};
      std::string msg = error_of([&] { Shard::open(dir / "w.bin", 0, verify); }, &kind);
      EXPECT_EQ(kind, util::ErrorKind::kInput) << "edit " << i;
      EXPECT_NE(msg.find("counts do not match the file size"), std::string::npos) << "edit " << i << ": " << msg;
    }
  }
}

TEST(DataShard, NotAShard) {
  TempDir dir;
  std::ofstream(dir / "n.bin") << std::string(300, 'x');
  std::string msg = error_of([&] { Shard::open(dir / "n.bin"); });
  EXPECT_NE(msg.find("bad magic"), std::string::npos) << msg;
}

}  // namespace
}  // namespace bert::data
