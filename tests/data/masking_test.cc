// Dynamic masking against its statistical definition, over more than a million maskable tokens.
#include "data/masking.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_util.h"
#include "util/error.h"

namespace bert::data {
namespace {

// Upper critical value of chi-square with `df` degrees of freedom at p = 0.001 (Wilson-Hilferty).
double chi2_critical_001(double df) {
  const double z = 3.0902;  // standard normal quantile 0.999
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

// Sequences like the loader's: [CLS] words [SEP] words [SEP] [PAD]..., some with [UNK]/[unused0] inside.
std::vector<int64_t> make_sequence(util::Rng& rng, const wordpiece::Vocab& v, int t, int len, int words) {
  std::vector<int64_t> ids(static_cast<size_t>(t), v.pad_id());
  ids[0] = v.cls_id();
  for (int i = 1; i < len - 1; ++i) {
    uint64_t r = rng.uniform(100);
    ids[static_cast<size_t>(i)] = r == 0 ? v.unk_id() : r == 1 ? 5 : testing::kFirstWord + static_cast<int64_t>(rng.uniform(words));
  }
  ids[static_cast<size_t>(len / 2)] = v.sep_id();
  ids[static_cast<size_t>(len - 1)] = v.sep_id();
  return ids;
}

TEST(DataMasking, SharesMatchTheDefinitionOverAMillionTokens) {
  auto vocab = testing::make_vocab(1000, 0);
  MaskingOptions o;
  Masker masker(*vocab, o);
  const int t = 128;
  uint64_t maskable = 0, chosen = 0, masked = 0, randomized = 0, kept = 0;
  std::vector<uint64_t> replacement_counts(static_cast<size_t>(vocab->size()), 0);
  util::Rng data_rng(99);
  for (int s = 0; s < 9000; ++s) {
    std::vector<int64_t> ids = make_sequence(data_rng, *vocab, t, s % 10 == 0 ? 60 : t, 1000);
    const std::vector<int64_t> original = ids;
    std::vector<int64_t> labels(static_cast<size_t>(t), 7);
    const int len = s % 10 == 0 ? 60 : t;
    util::Rng rng(util::derive_seed(1, "mask", 0, static_cast<uint64_t>(s)));
    const int n = masker.apply(ids.data(), labels.data(), len, rng);
    int count = 0;
    for (int i = 0; i < len; ++i) {
      const auto k = static_cast<size_t>(i);
      const bool special = vocab->is_special(static_cast<int32_t>(original[k]));
      maskable += !special;
      if (labels[k] == -100) {
        ASSERT_EQ(ids[k], original[k]) << "unchosen token changed";
        continue;
      }
      ASSERT_FALSE(special) << "special token chosen at " << i;
      ASSERT_EQ(labels[k], original[k]);
      ++count;
      if (ids[k] == vocab->mask_id()) {
        ++masked;
      } else if (ids[k] != original[k]) {
        ++randomized;
        ASSERT_FALSE(vocab->is_special(static_cast<int32_t>(ids[k]))) << "special token as replacement";
        ++replacement_counts[static_cast<size_t>(ids[k])];
      } else {
        ++kept;
      }
    }
    for (int i = len; i < t; ++i) ASSERT_EQ(labels[static_cast<size_t>(i)], 7) << "padding touched";
    ASSERT_EQ(n, count);
    chosen += static_cast<uint64_t>(n);
  }
  ASSERT_GT(maskable, 1000000u);
  const double share = static_cast<double>(chosen) / static_cast<double>(maskable);
  EXPECT_NEAR(share, 0.15, 0.001);
  const double c = static_cast<double>(chosen);
  EXPECT_NEAR(masked / c, 0.8, 0.003);
  EXPECT_NEAR(randomized / c, 0.1, 0.003);
  EXPECT_NEAR(kept / c, 0.1, 0.003);
  // Chi-square of the 80/10/10 split (2 degrees of freedom).
  const double chi_split = std::pow(masked - 0.8 * c, 2) / (0.8 * c) + std::pow(randomized - 0.1 * c, 2) / (0.1 * c) +
                           std::pow(kept - 0.1 * c, 2) / (0.1 * c);
  EXPECT_LT(chi_split, 13.82);  // p = 0.001
  // Chi-square of the replacements against uniform over the non-special ids.
  std::vector<uint64_t> non_special;
  for (int32_t id = 0; id < vocab->size(); ++id) {
    if (!vocab->is_special(id)) non_special.push_back(replacement_counts[static_cast<size_t>(id)]);
  }
  const double expected = static_cast<double>(randomized) / static_cast<double>(non_special.size());
  ASSERT_GT(expected, 5.0);
  double chi_uniform = 0;
  for (uint64_t n : non_special) chi_uniform += std::pow(static_cast<double>(n) - expected, 2) / expected;
  EXPECT_LT(chi_uniform, chi2_critical_001(static_cast<double>(non_special.size() - 1)));
  std::cout << "chosen share " << share << ", mask/random/kept " << masked / c << "/" << randomized / c << "/"
            << kept / c << ", chi2 split " << chi_split << ", chi2 uniform " << chi_uniform << "\n";
}

TEST(DataMasking, ChoiceIsUniformOverPositions) {
  auto vocab = testing::make_vocab(50, 0);
  Masker masker(*vocab, MaskingOptions{});
  const int t = 40;
  std::vector<uint64_t> per_position(static_cast<size_t>(t), 0);
  util::Rng data_rng(3);
  const int sequences = 20000;
  for (int s = 0; s < sequences; ++s) {
    std::vector<int64_t> ids(static_cast<size_t>(t));
    ids[0] = vocab->cls_id();
    for (int i = 1; i < t - 1; ++i) ids[static_cast<size_t>(i)] = testing::kFirstWord + static_cast<int64_t>(data_rng.uniform(50));
    ids[static_cast<size_t>(t - 1)] = vocab->sep_id();
    std::vector<int64_t> labels(static_cast<size_t>(t));
    util::Rng rng(static_cast<uint64_t>(s) + 1000);
    masker.apply(ids.data(), labels.data(), t, rng);
    for (int i = 0; i < t; ++i) per_position[static_cast<size_t>(i)] += labels[static_cast<size_t>(i)] != -100;
  }
  EXPECT_EQ(per_position[0], 0u);
  EXPECT_EQ(per_position[static_cast<size_t>(t - 1)], 0u);
  double total = 0;
  for (int i = 1; i < t - 1; ++i) total += static_cast<double>(per_position[static_cast<size_t>(i)]);
  const double expected = total / (t - 2);
  double chi = 0;
  for (int i = 1; i < t - 1; ++i) chi += std::pow(per_position[static_cast<size_t>(i)] - expected, 2) / expected;
  EXPECT_LT(chi, chi2_critical_001(t - 3));
}

TEST(DataMasking, WholeWordNeverSplitsAWord) {
  auto vocab = testing::make_vocab(300, 100);
  const int32_t first_piece = testing::kFirstWord + 300;
  MaskingOptions o;
  o.whole_word = true;
  Masker masker(*vocab, o);
  const int t = 128;
  util::Rng data_rng(5);
  uint64_t chosen = 0, maskable = 0, multi_piece_words_chosen = 0;
  for (int s = 0; s < 4000; ++s) {
    std::vector<int64_t> ids(static_cast<size_t>(t));
    ids[0] = vocab->cls_id();
    for (int i = 1; i < t - 1; ++i) {
      // 40% continuation pieces; a piece right after [CLS] starts its own "word".
      ids[static_cast<size_t>(i)] = data_rng.uniform(10) < 4 ? first_piece + static_cast<int64_t>(data_rng.uniform(100))
                                                             : testing::kFirstWord + static_cast<int64_t>(data_rng.uniform(300));
    }
    ids[static_cast<size_t>(t - 1)] = vocab->sep_id();
    std::vector<int64_t> labels(static_cast<size_t>(t));
    util::Rng rng(static_cast<uint64_t>(s));
    const std::vector<int64_t> original = ids;
    chosen += static_cast<uint64_t>(masker.apply(ids.data(), labels.data(), t, rng));
    maskable += t - 2;
    // Walk words: a start token and the continuation pieces after it share one decision.
    for (int i = 1; i < t - 1;) {
      int j = i + 1;
      while (j < t - 1 && vocab->is_continuation(static_cast<int32_t>(original[static_cast<size_t>(j)]))) ++j;
      const bool first = labels[static_cast<size_t>(i)] != -100;
      for (int k = i; k < j; ++k) ASSERT_EQ(labels[static_cast<size_t>(k)] != -100, first) << "word split at " << k;
      multi_piece_words_chosen += first && j - i > 1;
      i = j;
    }
  }
  EXPECT_GT(multi_piece_words_chosen, 1000u);
  EXPECT_NEAR(static_cast<double>(chosen) / static_cast<double>(maskable), 0.15, 0.01);
}

TEST(DataMasking, CapAtLeastOneAndDeterminism) {
  auto vocab = testing::make_vocab();
  MaskingOptions o;
  o.max_predictions_per_seq = 5;
  Masker capped(*vocab, o);
  std::vector<int64_t> base(128, 10);
  base[0] = vocab->cls_id();
  base[127] = vocab->sep_id();
  std::vector<int64_t> ids = base, labels(128);
  util::Rng rng(1);
  EXPECT_EQ(capped.apply(ids.data(), labels.data(), 128, rng), 5);

  // Two maskable tokens: 0.15 * 2 rounds to 0 or 1, at_least_one makes it always 1.
  Masker plain(*vocab, MaskingOptions{});
  for (uint64_t s = 0; s < 100; ++s) {
    std::vector<int64_t> tiny = {vocab->cls_id(), 8, 9, vocab->sep_id()}, l(4);
    util::Rng r(s);
    EXPECT_EQ(plain.apply(tiny.data(), l.data(), 4, r), 1);
  }
  MaskingOptions none;
  none.at_least_one = false;
  none.mask_prob = 0.0;
  Masker off(*vocab, none);
  ids = base;
  EXPECT_EQ(off.apply(ids.data(), labels.data(), 128, rng), 0);
  EXPECT_EQ(ids, base);
  // Only specials: nothing to choose even with at_least_one.
  std::vector<int64_t> specials = {vocab->cls_id(), vocab->sep_id(), vocab->pad_id()}, l3(3);
  EXPECT_EQ(plain.apply(specials.data(), l3.data(), 3, rng), 0);

  std::vector<int64_t> a = base, b = base, la(128), lb(128);
  util::Rng r1(77), r2(77), r3(78);
  plain.apply(a.data(), la.data(), 128, r1);
  plain.apply(b.data(), lb.data(), 128, r2);
  EXPECT_EQ(a, b);
  EXPECT_EQ(la, lb);
  std::vector<int64_t> c = base, lc(128);
  plain.apply(c.data(), lc.data(), 128, r3);
  EXPECT_NE(lc, la);
}

TEST(DataMasking, RejectsBadOptions) {
  auto vocab = testing::make_vocab();
  MaskingOptions o;
  o.mask_prob = 1.5;
  EXPECT_THROW(Masker(*vocab, o), util::Error);
  o = MaskingOptions{};
  o.mask_token_prob = 0.9;
  o.random_token_prob = 0.2;
  try {
    Masker m(*vocab, o);
    FAIL();
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("masking.mask_token_prob"), std::string::npos);
  }
}

}  // namespace
}  // namespace bert::data
