// End-to-end tests of the real bert-vocab binary: build/encode/stats, exit codes, and every kind of
// bad input the issue lists (each must name the file and the fix, exit non-zero, and leave no
// half-written output directory).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "util/atomic_file.h"

namespace {
namespace fs = std::filesystem;
using bert::util::read_file;
using bert::util::write_file_atomic;

const std::string kText = std::string(BERT_SOURCE_DIR) + "/data/testdata/multilingual.txt";

struct Result {
  int code;
  std::string out, err;
};

class VocabCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("bert_vocab_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result run(const std::string& args, const std::string& stdin_text = "") {
    const fs::path in = dir_ / "stdin.txt", out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    write_file_atomic(in, stdin_text);
    const std::string cmd = std::string("'") + BERT_VOCAB_BIN + "' " + args + " < '" + in.string() + "' > '" +
                            out.string() + "' 2> '" + err.string() + "'";
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(out), read_file(err)};
  }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  std::string build_small(const std::string& extra = "") {
    const Result r = run("build --input " + kText + " --output " + p("vocab") + " --vocab-size 2000 " + extra);
    EXPECT_EQ(r.code, 0) << r.err;
    return p("vocab");
  }
  fs::path dir_;
};

TEST_F(VocabCli, BuildWritesLoadableVocabAndSummary) {
  const Result r = run("build --input " + kText + " --output " + p("vocab") + " --vocab-size 1500 --unused 10 --min-frequency 1 "
                       "--mode lowercase --heldout " + kText + " --threads 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("lines"), std::string::npos);
  EXPECT_NE(r.out.find("alphabet"), std::string::npos);
  EXPECT_NE(r.out.find("held-out"), std::string::npos);
  EXPECT_NE(r.out.find("tokens/word"), std::string::npos);
  std::istringstream vocab(read_file(p("vocab") + "/vocab.txt"));
  std::vector<std::string> tokens;
  for (std::string t; std::getline(vocab, t);) tokens.push_back(t);
  ASSERT_EQ(tokens.size(), 1500u);
  EXPECT_EQ(tokens[0], "[PAD]");
  EXPECT_EQ(tokens[4], "[MASK]");
  EXPECT_EQ(tokens[5], "[unused0]");
  EXPECT_NE(read_file(p("vocab") + "/tokenizer_config.json").find("\"strip_accents\": false"), std::string::npos);
  EXPECT_FALSE(fs::exists(p("vocab") + ".tmp-" + std::to_string(::getpid())));
}

TEST_F(VocabCli, EncodeOneLinePerInputLineAndIds) {
  const std::string v = build_small("--mode lowercase");
  const Result r = run("encode --vocab " + v, "Żółć\n\nthe dog\n");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<std::string> got;
  for (std::string l; std::getline(lines, l);) got.push_back(l);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].rfind("żół", 0), 0u) << got[0];  // accents kept in lowercase mode
  EXPECT_EQ(got[1], "");
  const Result ids = run("encode --ids --vocab " + v, "the dog\n");
  ASSERT_EQ(ids.code, 0);
  EXPECT_NE(ids.out.find_first_of("0123456789"), std::string::npos);
  EXPECT_EQ(ids.out.find_first_not_of("0123456789 \n"), std::string::npos) << ids.out;
}

TEST_F(VocabCli, StatsReportsFertilityUnkAndContinuations) {
  const std::string v = build_small();
  const Result r = run("stats --vocab " + v + " --input " + kText);
  ASSERT_EQ(r.code, 0) << r.err;
  // "stats: 2500 lines, 44699 words, 1.5690 tokens/word, [UNK] 32.3181%, ## pieces 36.27%, ..."
  long lines = 0, words = 0;
  double per_word = 0, unk_pct = 0, cont_pct = 0;
  const auto at = r.out.find("stats: ");
  ASSERT_NE(at, std::string::npos) << r.out;
  ASSERT_EQ(std::sscanf(r.out.c_str() + at, "stats: %ld lines, %ld words, %lf tokens/word, [UNK] %lf%%, ## pieces %lf%%",
                        &lines, &words, &per_word, &unk_pct, &cont_pct), 5) << r.out;
  // The same figures counted independently from `bert-vocab encode` of the same text.
  const Result enc = run("encode --vocab " + v, read_file(kText));
  ASSERT_EQ(enc.code, 0) << enc.err;
  std::istringstream tokens(enc.out);
  long total = 0, unk = 0, cont = 0;
  for (std::string t; tokens >> t; ++total) {
    unk += t == "[UNK]";
    cont += t.rfind("##", 0) == 0;
  }
  EXPECT_EQ(lines, 2500);
  ASSERT_GT(words, 0);
  EXPECT_NEAR(per_word, static_cast<double>(total) / words, 5e-5) << total << " tokens";
  EXPECT_NEAR(unk_pct, 100.0 * unk / total, 5e-5);
  EXPECT_NEAR(cont_pct, 100.0 * cont / total, 5e-3);
}

TEST_F(VocabCli, HelpVersionAndUsageErrors) {
  Result r = run("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("build"), std::string::npos);
  EXPECT_NE(r.out.find("Example"), std::string::npos);
  r = run("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find(BERT_VERSION), std::string::npos);
  EXPECT_EQ(run("build --output x").code, 2);                // missing required flags
  EXPECT_EQ(run("frobnicate").code, 2);
  r = run("build --input " + kText + " --output " + p("v") + " --vocab-size 100 --mode Cased");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("uncased"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(p("v")));
}

TEST_F(VocabCli, BadInputFilesFailCleanlyNamingTheFile) {
  write_file_atomic(p("empty.txt"), "");
  std::string bin;
  for (int i = 0; i < 8192; ++i) bin.push_back(static_cast<char>((i * 131) & 0xFF));
  write_file_atomic(p("data.bin"), bin);
  struct Case { std::string input, expect; };
  for (const Case& c : {Case{p("missing.txt"), "does not exist"}, Case{dir_.string(), "is a directory"},
                        Case{p("empty.txt"), "is empty"}, Case{p("data.bin"), "binary"}}) {
    const Result r = run("build --input " + c.input + " --output " + p("out") + " --vocab-size 100");
    EXPECT_EQ(r.code, 1) << c.input;
    EXPECT_NE(r.err.find(c.input), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(p("out"))) << "no half-written output for " << c.input;
  }
  const Result unreadable = run("encode --vocab " + p("nowhere"), "x\n");
  EXPECT_EQ(unreadable.code, 1);
  EXPECT_NE(unreadable.err.find("nowhere"), std::string::npos);
}

TEST_F(VocabCli, FailedBuildKeepsThePreviousOutput) {
  const std::string v = build_small();
  const std::string before = read_file(v + "/vocab.txt");
  const Result r = run("build --input " + p("missing.txt") + " --output " + v + " --vocab-size 100");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(read_file(v + "/vocab.txt"), before);
}

TEST_F(VocabCli, VocabSizeBelowAlphabetIsAUsageErrorWithTheMinimum) {
  const Result r = run("build --input " + kText + " --output " + p("out") + " --vocab-size 50");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--vocab-size"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("or more"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(p("out")));
}

TEST_F(VocabCli, InvalidUtf8AndNulsAreCountedWithTheFirstOffset) {
  std::string text = "first line ok\nthen \xc3\x28 broken";
  text += std::string("\0\0 and nul\n", 11);
  for (int i = 0; i < 200; ++i) text += "more text here number " + std::to_string(i) + "\n";
  write_file_atomic(p("bad.txt"), text);
  const Result r = run("build --input " + p("bad.txt") + " --output " + p("out") + " --vocab-size 200");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("1 invalid UTF-8"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("offset 19"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("2 NUL"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(p("bad.txt")), std::string::npos) << r.err;
}

TEST_F(VocabCli, FiftyMegabyteSingleLine) {
  std::string line;
  line.reserve(50u << 20);
  for (int i = 0; line.size() < (50u << 20); ++i) line += "token" + std::to_string(i % 5000) + " ";
  line += "\n";
  write_file_atomic(p("long.txt"), line);
  line.clear();
  line.shrink_to_fit();
  const auto t0 = std::chrono::steady_clock::now();
  const std::string cmd = "build --input " + p("long.txt") + " --output " + p("out") + " --vocab-size 400 --threads 2";
  const Result b = run(cmd);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.out.find("1 lines"), std::string::npos) << b.out;
  EXPECT_LT(secs, 20.0);
}

TEST_F(VocabCli, MalformedVocabFilesAreRejected) {
  struct Case { std::string content, expect; };
  for (const Case& c : {Case{"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\na\n", "duplicate"},
                        Case{"[PAD]\n[CLS]\n[SEP]\n[MASK]\na\n", "[UNK]"}, Case{"", "empty"}}) {
    fs::create_directories(p("bad_vocab"));
    write_file_atomic(p("bad_vocab") + "/vocab.txt", c.content);
    const Result r = run("encode --vocab " + p("bad_vocab"), "a\n");
    EXPECT_EQ(r.code, 1) << c.content;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("vocab.txt"), std::string::npos) << r.err;
  }
}

// Issue 12: Google's tokenization_test.py vocabulary has no [PAD] or [MASK]; encoding needs neither.
TEST_F(VocabCli, EncodesWithGooglesTestVocabularyWhichHasNoPadOrMask) {
  fs::create_directories(p("google"));
  write_file_atomic(p("google") + "/vocab.txt", "[UNK]\n[CLS]\n[SEP]\nwant\n##want\n##ed\nwa\nun\nrunn\n##ing\n,\n");
  const Result r = run("encode --vocab " + p("google"), "UNwant\u00E9d,running\n");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "un ##want ##ed , runn ##ing\n");
  const Result ids = run("encode --ids --vocab " + p("google"), "UNwant\u00E9d,running\n");
  EXPECT_EQ(ids.out, "7 4 5 10 8 9\n");
  const Result stats = run("stats --vocab " + p("google") + " --input " + kText);
  EXPECT_EQ(stats.code, 0) << stats.err;
}

}  // namespace
