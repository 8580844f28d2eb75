// Word counting and input checks: chunking at word boundaries, bad files, invalid UTF-8 and NULs.
#include <gtest/gtest.h>

#include "util/atomic_file.h"
#include "util/error.h"
#include "wordpiece/text_input.h"
#include "wordpiece/word_counter.h"

namespace bert::wordpiece {
namespace {
namespace fs = std::filesystem;

class CounterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("bert_counter_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& content) {
    util::write_file_atomic(dir_ / name, content);
    return dir_ / name;
  }
  fs::path dir_;
};

uint64_t count_of(const WordCounts& c, const std::string& w) {
  for (const auto& [word, n] : c.words) if (word == w) return n;
  return 0;
}

TEST_F(CounterTest, CountsNormalizedWordsAndLines) {
  const auto f = write("a.txt", "Hello, hello WORLD!\n\nŻółć żółć\n");
  const WordCounts c = count_words({f}, CountOptions{});
  EXPECT_EQ(count_of(c, "hello"), 2u);
  EXPECT_EQ(count_of(c, "zołc"), 2u);
  EXPECT_EQ(count_of(c, ","), 1u);
  EXPECT_EQ(c.lines, 3u);
  EXPECT_EQ(c.total_words, 7u);
}

TEST_F(CounterTest, ChunkingDoesNotChangeCounts) {
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "alpha beta,gamma " + std::to_string(i % 17) + (i % 5 ? " " : "\n");
  const auto f = write("b.txt", text);
  CountOptions big, tiny;
  tiny.chunk_bytes = 100;
  tiny.threads = 3;
  EXPECT_EQ(count_words({f}, big).words, count_words({f}, tiny).words);
  const auto chunks = cut_chunks(text, 100);
  size_t total = 0;
  for (const auto& ch : chunks) total += ch.text.size();
  EXPECT_EQ(total, text.size());
}

TEST_F(CounterTest, HugeLineWithoutSpacesIsSkippedNotAccumulated) {
  std::string text = "start " + std::string(300000, 'x') + " end\n";
  CountOptions o;
  o.chunk_bytes = 4096;
  const WordCounts c = count_words({write("c.txt", text)}, o);
  EXPECT_EQ(count_of(c, "start"), 1u);
  EXPECT_EQ(count_of(c, "end"), 1u);
  EXPECT_EQ(c.words.size(), 2u);  // no fragment of the long word is counted as a word
}

TEST_F(CounterTest, ReportsInvalidUtf8AndNuls) {
  std::string text = "good line\nbad \xff\xfe byte";
  text += std::string("\0nul\n", 5);
  const WordCounts c = count_words({write("d.txt", text)}, CountOptions{});
  EXPECT_EQ(c.invalid_utf8, 2u);
  EXPECT_EQ(c.first_invalid_offset, 14u);
  EXPECT_EQ(c.nul_bytes, 1u);
  EXPECT_EQ(count_of(c, "bytenul"), 1u);  // NUL is dropped, not a separator
}

TEST_F(CounterTest, RejectsMissingDirectoryEmptyAndBinaryFiles) {
  auto message = [&](const fs::path& p) {
    try {
      check_text_file(p);
    } catch (const util::Error& e) {
      EXPECT_EQ(e.kind(), util::ErrorKind::kInput);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(dir_ / "nope.txt").find("does not exist"), std::string::npos);
  EXPECT_NE(message(dir_).find("is a directory"), std::string::npos);
  EXPECT_NE(message(write("e.txt", "")).find("is empty"), std::string::npos);
  std::string bin;
  for (int i = 0; i < 4096; ++i) bin.push_back(static_cast<char>((i * 7919) & 0xFF));
  EXPECT_NE(message(write("f.bin", bin)).find("binary"), std::string::npos);
  EXPECT_EQ(check_text_file(write("g.txt", "fine\n")), 5u);
}

}  // namespace
}  // namespace bert::wordpiece
