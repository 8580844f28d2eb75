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

TEST(Vocab, RejectsDuplicatesAndMissingSpecials) {
  EXPECT_THROW(Vocab({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "a"}, {}), util::Error);
  EXPECT_THROW(Vocab({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"}, {}), util::Error);
  EXPECT_THROW(Vocab({}, {}), util::Error);
}

}  // namespace
}  // namespace bert::wordpiece
