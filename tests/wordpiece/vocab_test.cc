// Vocab validation and the save/load round trip with its normalization settings.
#include <gtest/gtest.h>

#include "util/atomic_file.h"
#include "util/error.h"
#include "wordpiece/vocab.h"

namespace bert::wordpiece {
namespace {
namespace fs = std::filesystem;

TEST(Vocab, RoundTripKeepsTokensAndSettings) {
  const fs::path dir = fs::temp_directory_path() / ("bert_vocab_rt_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  TokenizerConfig cfg;
  cfg.normalizer = text::options_for(text::CaseMode::kLowercase);
  Vocab v({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "żół", "##ć"}, cfg);
  v.save(dir);
  Vocab w = Vocab::load(dir);
  EXPECT_EQ(w.tokens(), v.tokens());
  EXPECT_TRUE(w.config().normalizer.lowercase);
  EXPECT_FALSE(w.config().normalizer.strip_accents);
  EXPECT_EQ(w.fingerprint(), v.fingerprint());
  EXPECT_TRUE(w.is_continuation(6));
  EXPECT_EQ(w.id("żół"), 5);
  fs::remove_all(dir);
}

TEST(Vocab, RejectsDuplicatesAnEmptyListAndAMissingUnknownToken) {
  EXPECT_THROW(Vocab({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "a"}, {}), util::Error);
  EXPECT_THROW(Vocab({"[PAD]", "[CLS]", "[SEP]", "[MASK]", "a"}, {}), util::Error);
  EXPECT_THROW(Vocab({}, {}), util::Error);
}

// Only [UNK] is needed to load and encode; sequence building asks for the rest and names what lacks.
TEST(Vocab, SequenceTokensAreRequiredOnlyByTheirUsers) {
  const Vocab v({"[UNK]", "[CLS]", "[SEP]", "a"}, {}, "dir/vocab.txt");
  EXPECT_EQ(v.unk_id(), 0);
  EXPECT_EQ(v.pad_id(), -1);
  EXPECT_EQ(v.mask_id(), -1);
  EXPECT_TRUE(v.is_special(1));
  try {
    v.require_sequence_tokens("bert-train");
    FAIL() << "a vocabulary without [PAD] and [MASK] was accepted for training";
  } catch (const util::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("dir/vocab.txt: bert-train needs"), std::string::npos) << m;
    EXPECT_NE(m.find("lacks [PAD], [MASK];"), std::string::npos) << m;
    EXPECT_EQ(m.find("lacks [PAD], [CLS]"), std::string::npos) << m;
  }
  const Vocab full({"[UNK]", "[CLS]", "[SEP]", "a", "[PAD]", "[MASK]"}, {});
  EXPECT_NO_THROW(full.require_sequence_tokens("bert-train"));
  EXPECT_EQ(full.pad_id(), 4);
  EXPECT_EQ(full.mask_id(), 5);
}

// Found by vocab_fuzz: whatever load accepts, save + load gives back (extra CRs, repeated BOMs).
TEST(Vocab, SaveThenLoadIsARoundTripForCrlfAndByteOrderMarks) {
  const fs::path dir = fs::temp_directory_path() / ("bert_vocab_roundtrip_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const std::string& text : {std::string("\xEF\xBB\xBF\xEF\xBB\xBF[UNK]\r\na\r\r\nb\n"),
                                  std::string("[UNK]\r\r\nx\ry\n")}) {
    util::write_file_atomic(dir / "vocab.txt", text);
    std::remove((dir / "tokenizer_config.json").c_str());
    const Vocab first = Vocab::load(dir);
    first.save(dir);
    const Vocab second = Vocab::load(dir);
    EXPECT_EQ(first.tokens(), second.tokens()) << text;
    EXPECT_EQ(first.fingerprint(), second.fingerprint()) << text;
    EXPECT_EQ(first.unk_id(), 0) << text;
  }
  fs::remove_all(dir);
}

// Found in review of the fuzz harness: wrong-typed tokenizer_config.json values are input errors.
TEST(Vocab, WrongTypedTokenizerConfigValuesAreInputErrors) {
  const fs::path dir = fs::temp_directory_path() / ("bert_vocab_badcfg_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  util::write_file_atomic(dir / "vocab.txt", "[UNK]\na\n");
  for (const char* cfg : {R"({"unk_token": {"content": 5}})", R"({"max_input_chars_per_word": 4294967301})",
                          R"({"max_input_chars_per_word": 0})"}) {
    util::write_file_atomic(dir / "tokenizer_config.json", cfg);
    EXPECT_THROW(Vocab::load(dir), util::Error) << cfg;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bert::wordpiece
