// Corpus reading: BERT text documents, gzip, JSONL with sentence splitting, bad-line policy.
#include "data/corpus_reader.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>

#include "test_util.h"
#include "util/error.h"

namespace bert::data {
namespace {
using testing::TempDir;
using Docs = std::vector<std::vector<std::string>>;

Docs read_all(const fs::path& p, const std::string& on_bad = "skip", CorpusReadStats* stats = nullptr) {
  CorpusReader r(p, on_bad);
  Docs out;
  std::vector<std::string> doc;
  while (r.next_document(doc)) out.push_back(doc);
  if (stats) *stats = r.stats();
  return out;
}

void write_gz(const fs::path& p, const std::string& text) {
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  gzclose(f);
}

TEST(DataCorpusReader, TextDocumentsAreSeparatedByBlankLines) {
  TempDir dir;
  std::ofstream(dir / "a.txt") << "\n\nFirst one.\nSecond one.\n\n  \t\nThird.\r\n\r\nFourth\nFifth";
  CorpusReadStats st;
  Docs d = read_all(dir / "a.txt", "skip", &st);
  EXPECT_EQ(d, (Docs{{"First one.", "Second one."}, {"Third."}, {"Fourth", "Fifth"}}));
  EXPECT_EQ(st.documents, 3u);
  EXPECT_EQ(st.sentences, 5u);
  EXPECT_EQ(st.lines, 10u);
}

TEST(DataCorpusReader, GzipGivesTheSameDocuments) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "sentence " + std::to_string(i) + (i % 7 == 6 ? "\n\n" : "\n");
  std::ofstream(dir / "b.txt") << text;
  write_gz(dir / "b.txt.gz", text);
  Docs plain = read_all(dir / "b.txt"), gz = read_all(dir / "b.txt.gz");
  EXPECT_EQ(plain.size(), 715u);
  EXPECT_EQ(plain, gz);
}

TEST(DataCorpusReader, CorruptGzipIsAnInputError) {
  TempDir dir;
  std::string text(200000, 'a');
  write_gz(dir / "c.txt.gz", text);
  fs::resize_file(dir / "c.txt.gz", fs::file_size(dir / "c.txt.gz") / 2);
  try {
    read_all(dir / "c.txt.gz");
    FAIL() << "no error";
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("c.txt.gz"), std::string::npos) << e.what();
  }
}

TEST(DataCorpusReader, SplitSentencesUsesLinesAndTerminators) {
  EXPECT_EQ(split_sentences("He left. She stayed!\nNew line"),
            (std::vector<std::string>{"He left.", "She stayed!", "New line"}));
  EXPECT_EQ(split_sentences("Really?! \"Yes.\" Then 3.5 apples... ok"),
            (std::vector<std::string>{"Really?!", "\"Yes.\"", "Then 3.5 apples...", "ok"}));
  EXPECT_EQ(split_sentences("  \n\n "), std::vector<std::string>{});
  EXPECT_EQ(split_sentences("no terminator"), std::vector<std::string>{"no terminator"});
}

TEST(DataCorpusReader, JsonlOneDocumentPerLine) {
  TempDir dir;
  std::ofstream(dir / "d.jsonl") << R"({"text": "A b. C d.\nE f"})" "\n\n"
                                 << R"({"text": "Only one", "id": 3})" "\n"
                                 << R"({"text": "   "})" "\n";
  write_gz(dir / "d.jsonl.gz", R"({"text": "A b. C d.\nE f"})" "\n");
  EXPECT_EQ(read_all(dir / "d.jsonl"), (Docs{{"A b.", "C d.", "E f"}, {"Only one"}}));
  EXPECT_EQ(read_all(dir / "d.jsonl.gz"), (Docs{{"A b.", "C d.", "E f"}}));
  EXPECT_EQ(corpus_format_for("x.json.gz"), CorpusFormat::kJsonl);
  EXPECT_EQ(corpus_format_for("x.txt.gz"), CorpusFormat::kText);
}

TEST(DataCorpusReader, BadJsonlLinesAreSkippedAndCountedOrFailWithTheLineNumber) {
  TempDir dir;
  std::ofstream(dir / "e.jsonl") << R"({"text": "good one"})" "\n"
                                 << "not json\n"
                                 << R"({"body": "x"})" "\n"
                                 << R"({"text": 5})" "\n"
                                 << R"([1, 2])" "\n"
                                 << R"({"text": "good two"})" "\n";
  CorpusReadStats st;
  EXPECT_EQ(read_all(dir / "e.jsonl", "skip", &st), (Docs{{"good one"}, {"good two"}}));
  EXPECT_EQ(st.bad_lines, 4u);
  try {
    read_all(dir / "e.jsonl", "fail");
    FAIL() << "no error";
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("e.jsonl:2: not valid JSON"), std::string::npos) << e.what();
  }
  EXPECT_THROW(CorpusReader(dir / "e.jsonl", "ignore"), util::Error);
}

TEST(DataCorpusReader, BlankAndMissingFiles) {
  TempDir dir;
  std::ofstream(dir / "blank.txt") << "\n\n   \n\t\n";
  std::ofstream(dir / "empty.txt");
  EXPECT_TRUE(read_all(dir / "blank.txt").empty());
  EXPECT_TRUE(read_all(dir / "empty.txt").empty());
  try {
    CorpusReader r(dir / "missing.txt", "skip");
    FAIL() << "no error";
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("missing.txt"), std::string::npos);
  }
}

TEST(DataCorpusReader, LinesLongerThanTheBufferAreKeptWhole) {
  TempDir dir;
  std::string long_line(3 << 20, 'z');
  std::ofstream(dir / "l.txt") << "a\n" << long_line << "\nb\n";
  Docs d = read_all(dir / "l.txt");
  ASSERT_EQ(d.size(), 1u);
  ASSERT_EQ(d[0].size(), 3u);
  EXPECT_EQ(d[0][1].size(), long_line.size());
}

}  // namespace
}  // namespace bert::data
