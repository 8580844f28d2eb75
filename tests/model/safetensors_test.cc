// Safetensors reader/writer: layout of what we write, and every corruption the reader must catch.
#include "model/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "temp_dir.h"
#include "util/error.h"

namespace bert::model {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<testing::TempDir>("bert_safetensors_test");
    dir_ = tmp_->path();
  }
  void TearDown() override { tmp_.reset(); }

  fs::path write_raw(const std::string& bytes) {
    const auto p = dir_ / "t.safetensors";
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  // A file with the given JSON header (unpadded) followed by `data_bytes` zero bytes.
  fs::path write_with_header(const std::string& header, size_t data_bytes) {
    std::string s(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(s.data(), &n, 8);
    return write_raw(s + header + std::string(data_bytes, '\0'));
  }
  // The message of the Error(kInput) that opening `p` throws ("" and a test failure if none).
  std::string open_error(const fs::path& p) {
    try {
      SafetensorsFile f(p);
    } catch (const util::Error& e) {
      EXPECT_EQ(e.kind(), util::ErrorKind::kInput);
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
      return msg;
    }
    ADD_FAILURE() << "no error for " << p;
    return "";
  }

  std::unique_ptr<testing::TempDir> tmp_;
  fs::path dir_;
};

TEST_F(SafetensorsTest, RoundTripLayoutAndAlignment) {
  const float a[6] = {1, 2, 3, 4, 5, 6};
  const int64_t b[2] = {-7, 1LL << 40};
  const uint16_t c[1] = {0x3f80};
  const auto p = dir_ / "rt.safetensors";
  write_safetensors(p, {{"zeta", "F32", {2, 3}, a, sizeof(a)},
                        {"alpha", "I64", {2}, b, sizeof(b)},
                        {"mid", "BF16", {}, c, sizeof(c)},
                        {"empty", "F32", {0, 4}, nullptr, 0}});
  SafetensorsFile f(p);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.info("zeta").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.info("mid").shape, std::vector<int64_t>{});
  EXPECT_EQ(f.info("empty").numel(), 0);
  EXPECT_EQ(std::memcmp(f.data("zeta"), a, sizeof(a)), 0);
  EXPECT_EQ(std::memcmp(f.data("alpha"), b, sizeof(b)), 0);
  EXPECT_EQ(std::memcmp(f.data("mid"), c, sizeof(c)), 0);
  // Data in sorted key order starting at offset 0; header padded so data starts 8-byte aligned.
  EXPECT_EQ(f.info("alpha").begin, 0u);
  EXPECT_EQ(f.info("empty").begin, 16u);
  EXPECT_EQ(f.info("mid").begin, 16u);
  EXPECT_EQ(f.info("zeta").begin, 18u);
  uint64_t n = 0;
  std::ifstream(p, std::ios::binary).read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(fs::file_size(p), 8 + n + 16 + 2 + 24);
  EXPECT_THROW(f.info("nope"), util::Error);
}

TEST_F(SafetensorsTest, WriterRejectsBadInput) {
  const float a[2] = {1, 2};
  EXPECT_THROW(serialize_safetensors({{"x", "F32", {3}, a, sizeof(a)}}), util::Error);
  EXPECT_THROW(serialize_safetensors({{"x", "F31", {2}, a, sizeof(a)}}), util::Error);
  EXPECT_THROW(serialize_safetensors({{"x", "F32", {2}, a, sizeof(a)}, {"x", "F32", {2}, a, sizeof(a)}}),
               util::Error);
}

TEST_F(SafetensorsTest, ShorterThanEightBytes) {
  EXPECT_NE(open_error(write_raw("abc")).find("shorter than the 8-byte header length"), std::string::npos);
  EXPECT_NE(open_error(write_raw("")).find("0 bytes"), std::string::npos);
}

TEST_F(SafetensorsTest, HeaderLengthBeyondFile) {
  std::string s(8, '\0');
  const uint64_t n = 1000;
  std::memcpy(s.data(), &n, 8);
  EXPECT_NE(open_error(write_raw(s + "{}")).find("header length 1000 runs past"), std::string::npos);
  const uint64_t huge = ~0ull;
  std::memcpy(s.data(), &huge, 8);
  EXPECT_NE(open_error(write_raw(s + "{}")).find("runs past"), std::string::npos);
}

TEST_F(SafetensorsTest, BadJson) {
  EXPECT_NE(open_error(write_with_header("{\"a\": ", 0)).find("invalid JSON"), std::string::npos);
  EXPECT_NE(open_error(write_with_header("[1, 2]", 0)).find("not a JSON object"), std::string::npos);
}

TEST_F(SafetensorsTest, EntryErrorsNameTheKey) {
  struct Case {
    std::string header;
    size_t data;
    std::string expect;
  };
  const Case cases[] = {
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4, "\"w\": data_offsets [0,8] run past"},
      {R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "\"w\": data_offsets span 8 bytes but shape [3] of F32 needs 12"},
      {R"({"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", 8, "\"w\": unknown dtype \"Q7\""},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, "\"w\": data_offsets are reversed"},
      {R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, "\"w\": shape must hold non-negative"},
      {R"({"w":{"dtype":"F32","shape":[2]}})", 8, "\"w\": data_offsets must be [begin, end]"},
      {R"({"w":{"shape":[2],"data_offsets":[0,8]}})", 8, "\"w\": missing or non-string dtype"},
      {R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8, "\"w\": missing or non-array shape"},
      {R"({"w":[1]})", 8, "\"w\": entry must be an object"},
      {R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", 8, "needs 18446744073709551615"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "\"a\" and \"b\" have overlapping data_offsets"},
      {R"({"__metadata__":{"format":1}})", 0, "__metadata__[\"format\"] must be a string"},
      {R"({"__metadata__":[]})", 0, "__metadata__ must be an object"},
  };
  for (const auto& tc : cases) {
    const std::string msg = open_error(write_with_header(tc.header, tc.data));
    EXPECT_NE(msg.find(tc.expect), std::string::npos) << "header " << tc.header << "\nmessage: " << msg;
  }
}

TEST_F(SafetensorsTest, AcceptsUnpaddedHeaderAndAdjacentTensors) {
  const auto p = write_with_header(
      R"({"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[3],"data_offsets":[2,5]}})", 5);
  SafetensorsFile f(p);
  EXPECT_EQ(f.tensors().size(), 2u);
  EXPECT_TRUE(f.metadata().empty());
}

// Found while writing tests/fuzz/safetensors_fuzz (its invariant calls numel()): numel() multiplied
// the dimensions in int64 before meeting the 0, overflowing (undefined behaviour) for a valid empty entry.
TEST_F(SafetensorsTest, EmptyTensorWithLargeDimensionsHasNoElements) {
  const auto p = write_with_header(R"({"e":{"dtype":"U8","shape":[3037000500,3037000500,0],"data_offsets":[0,0]}})", 0);
  SafetensorsFile f(p);
  EXPECT_EQ(f.info("e").numel(), 0);
  EXPECT_EQ(f.info("e").shape.size(), 3u);
}

// Bytes that no tensor covers (a hole between tensors, or bytes after the last) mean corrupt offsets;
// the Rust reader refuses such files too (MetadataIncompleteBuffer, InvalidOffset).
TEST_F(SafetensorsTest, UncoveredBytesAreRejected) {
  EXPECT_NE(open_error(write_with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8))
                .find("bytes [4, 8) at the end of the data section belong to no tensor"),
            std::string::npos);
  EXPECT_NE(open_error(write_with_header(
                R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 12))
                .find("bytes [4, 8) of the data section belong to no tensor (before \"b\")"),
            std::string::npos);
  EXPECT_NE(open_error(write_with_header(R"({"__metadata__":{"format":"pt"}})", 3)).find("bytes [0, 3) at the end"),
            std::string::npos);
}

}  // namespace
}  // namespace bert::model
