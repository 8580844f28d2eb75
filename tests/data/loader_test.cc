// The loader: determinism, exact resumption (also across epochs), rank sharding, prefetch errors,
// evaluation pass, batch dumps.
#include "data/loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "data/permutation.h"
#include "test_util.h"
#include "util/error.h"

namespace bert::data {
namespace {
using testing::TempDir;

struct Corpus {
  TempDir dir;
  std::shared_ptr<const wordpiece::Vocab> vocab = testing::make_vocab();
  std::shared_ptr<const Dataset> dataset;
  explicit Corpus(const std::string& packing = "full-sentences", int docs = 60, int max_seq_len = 32) {
    testing::write_shard(dir / "a.bin", *vocab, testing::random_docs(1, docs, 1, 10, 1, 20));
    testing::write_shard(dir / "b.bin", *vocab, testing::random_docs(2, docs / 2, 1, 10, 1, 20));
    ShardList shards = {Shard::open(dir / "a.bin"), Shard::open(dir / "b.bin")};
    SequenceOptions o;
    o.packing = packing;
    o.max_seq_len = max_seq_len;
    dataset = std::make_shared<Dataset>(shards, vocab, o, 5);
  }
};

LoaderOptions opts(int batch, int prefetch = 2, int rank = 0, int world = 1) {
  LoaderOptions o;
  o.batch_size = batch;
  o.prefetch = prefetch;
  o.rank = rank;
  o.world_size = world;
  o.seed = 123;
  return o;
}

bool same(const HostBatch& a, const HostBatch& b) {
  return a.batch_size == b.batch_size && a.seq_len == b.seq_len && a.input_ids == b.input_ids &&
         a.token_type_ids == b.token_type_ids && a.attention_mask == b.attention_mask &&
         a.mlm_labels == b.mlm_labels && a.nsp_labels == b.nsp_labels &&
         a.num_real_tokens == b.num_real_tokens && a.num_predictions == b.num_predictions;
}

std::vector<HostBatch> take(Loader& l, int n) {
  std::vector<HostBatch> out;
  for (int i = 0; i < n; ++i) out.push_back(l.next());
  return out;
}

TEST(DataPermutation, IsABijectionForManySizes) {
  for (uint64_t n : {1ull, 2ull, 3ull, 7ull, 64ull, 1000ull, 4097ull}) {
    Permutation p(n, n * 31);
    std::vector<char> seen(n, 0);
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t v = p(i);
      ASSERT_LT(v, n);
      ASSERT_FALSE(seen[v]);
      seen[v] = 1;
    }
  }
  Permutation a(1000, 1), b(1000, 2);
  int fixed = 0, differ = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    fixed += a(i) == i;
    differ += a(i) != b(i);
  }
  EXPECT_LT(fixed, 20);
  EXPECT_GT(differ, 950);
}

TEST(DataLoader, BatchesAreWellFormedAndDeterministic) {
  Corpus s;
  Loader a(s.dataset, opts(8, 3), MaskingOptions{});
  Loader b(s.dataset, opts(8, 0), MaskingOptions{});  // synchronous: same stream
  const int64_t per_epoch = a.batches_per_epoch();
  EXPECT_EQ(per_epoch, static_cast<int64_t>(s.dataset->stats().sequences / 8));
  for (int i = 0; i < 2 * per_epoch + 3; ++i) {
    HostBatch x = a.next(), y = b.next();
    ASSERT_TRUE(same(x, y)) << "batch " << i;
    ASSERT_EQ(x.batch_size, 8);
    ASSERT_EQ(x.seq_len, 32);
    int64_t real = 0, predicted = 0;
    for (size_t k = 0; k < x.attention_mask.size(); ++k) {
      real += x.attention_mask[k];
      predicted += x.mlm_labels[k] != -100;
      if (x.attention_mask[k] == 0) {
        ASSERT_EQ(x.mlm_labels[k], -100);
      }
    }
    EXPECT_EQ(real, x.num_real_tokens);
    EXPECT_EQ(predicted, x.num_predictions);
    for (int r = 0; r < 8; ++r) {
      EXPECT_EQ(x.input_ids[static_cast<size_t>(r) * 32], s.vocab->cls_id());
      EXPECT_EQ(x.nsp_labels[static_cast<size_t>(r)], -100);
      EXPECT_GE(std::count(x.mlm_labels.begin() + r * 32, x.mlm_labels.begin() + (r + 1) * 32, -100), 1);
    }
  }
  EXPECT_EQ(a.position().epoch, 2u);
  EXPECT_EQ(a.position().batch, 3);
}

TEST(DataLoader, EpochsReshuffleAndRemask) {
  Corpus s;
  Loader l(s.dataset, opts(4), MaskingOptions{});
  const int64_t n = l.batches_per_epoch();
  auto e0 = take(l, static_cast<int>(n));
  auto e1 = take(l, static_cast<int>(n));
  EXPECT_FALSE(same(e0[0], e1[0]));
  // The same sequence in two epochs (unshuffled maker, position 0) gets a different mask.
  LoaderOptions o = opts(4);
  BatchMaker maker(s.dataset, o, MaskingOptions{}, /*shuffle=*/false);
  HostBatch m0 = maker.make(0, 0), m1 = maker.make(1, 0), m0b = maker.make(0, 0);
  EXPECT_TRUE(same(m0, m0b));
  EXPECT_EQ(m0.attention_mask, m1.attention_mask);
  EXPECT_NE(m0.mlm_labels, m1.mlm_labels);
}

TEST(DataLoader, ResumingFromACursorGivesExactlyTheRemainingStream) {
  Corpus s;
  Loader full(s.dataset, opts(8), MaskingOptions{});
  const int64_t n = full.batches_per_epoch();
  auto reference = take(full, static_cast<int>(3 * n));
  for (int64_t stop : {int64_t{1}, n - 1, n, n + 2, 2 * n - 1}) {
    Loader first(s.dataset, opts(8), MaskingOptions{});
    take(first, static_cast<int>(stop));
    const std::string saved = first.cursor().dump();  // what a checkpoint stores
    Loader resumed(s.dataset, opts(8, 4), MaskingOptions{});
    resumed.next();  // a loader that already moved: restore must discard its prefetched batches
    resumed.restore(nlohmann::json::parse(saved));
    EXPECT_EQ(resumed.cursor().dump(), saved);
    for (int64_t i = stop; i < 3 * n; ++i) {
      ASSERT_TRUE(same(resumed.next(), reference[static_cast<size_t>(i)])) << "stop " << stop << " batch " << i;
    }
  }
}

TEST(DataLoader, NspPairingIsReDrawnPerEpochAndResumable) {
  Corpus s("nsp-pairs", 120, 48);
  Loader full(s.dataset, opts(4), MaskingOptions{});
  const int64_t n0 = full.batches_per_epoch();
  auto reference = take(full, static_cast<int>(n0 + 5));
  HostBatch b = reference[0];
  for (int r = 0; r < 4; ++r) EXPECT_TRUE(b.nsp_labels[static_cast<size_t>(r)] == 0 || b.nsp_labels[static_cast<size_t>(r)] == 1);
  Loader first(s.dataset, opts(4), MaskingOptions{});
  take(first, static_cast<int>(n0 - 2));
  nlohmann::json c = first.cursor();
  Loader resumed(s.dataset, opts(4), MaskingOptions{});
  resumed.restore(c);
  for (int64_t i = n0 - 2; i < n0 + 5; ++i) ASSERT_TRUE(same(resumed.next(), reference[static_cast<size_t>(i)]));
  auto p0 = s.dataset->sequences(0), p1 = s.dataset->sequences(1);
  size_t differ = 0;
  for (size_t i = 0; i < std::min(p0->refs.size(), p1->refs.size()); ++i) {
    differ += p0->refs[i].b_begin != p1->refs[i].b_begin || p0->refs[i].a_len != p1->refs[i].a_len;
  }
  EXPECT_GT(differ, p0->refs.size() / 4);
}

TEST(DataLoader, RanksSplitEachGlobalBatchWithoutOverlap) {
  Corpus s;
  // Two ranks with batch 4 see exactly what one rank with batch 8 sees, masks included.
  Loader single(s.dataset, opts(8), MaskingOptions{});
  Loader r0(s.dataset, opts(4, 2, 0, 2), MaskingOptions{});
  Loader r1(s.dataset, opts(4, 2, 1, 2), MaskingOptions{});
  ASSERT_EQ(r0.batches_per_epoch(), single.batches_per_epoch());
  for (int i = 0; i < 2 * single.batches_per_epoch(); ++i) {
    HostBatch all = single.next(), a = r0.next(), b = r1.next();
    const size_t half = all.input_ids.size() / 2;
    ASSERT_TRUE(std::equal(a.input_ids.begin(), a.input_ids.end(), all.input_ids.begin()));
    ASSERT_TRUE(std::equal(b.input_ids.begin(), b.input_ids.end(), all.input_ids.begin() + half));
    ASSERT_TRUE(std::equal(a.mlm_labels.begin(), a.mlm_labels.end(), all.mlm_labels.begin()));
    ASSERT_TRUE(std::equal(b.mlm_labels.begin(), b.mlm_labels.end(), all.mlm_labels.begin() + half));
  }
}

TEST(DataLoader, ThreeRanksCoverEveryUnmaskedSequenceOnce) {
  Corpus s;
  MaskingOptions none;
  none.mask_prob = 0;
  none.at_least_one = false;
  const int t = s.dataset->max_seq_len();
  std::multiset<std::vector<int64_t>> expected, seen;
  auto index = s.dataset->sequences(0);
  for (const auto& r : index->refs) {
    std::vector<int64_t> ids(static_cast<size_t>(t)), ty(static_cast<size_t>(t)), at(static_cast<size_t>(t));
    s.dataset->fill(r, ids.data(), ty.data(), at.data());
    expected.insert(ids);
  }
  for (int rank = 0; rank < 3; ++rank) {
    LoaderOptions o = opts(5, 1, rank, 3);
    o.drop_last = false;
    Loader l(s.dataset, o, none);
    const int64_t n = l.batches_per_epoch();
    EXPECT_EQ(n, static_cast<int64_t>((index->refs.size() + 14) / 15));
    for (int64_t i = 0; i < n; ++i) {
      HostBatch b = l.next();
      for (int r = 0; r < b.batch_size; ++r) {
        seen.insert(std::vector<int64_t>(b.input_ids.begin() + r * t, b.input_ids.begin() + (r + 1) * t));
      }
    }
    EXPECT_EQ(l.position().epoch, 1u);
  }
  EXPECT_EQ(seen, expected);
}

TEST(DataLoader, BadCursorsAreInputErrors) {
  Corpus s;
  Loader l(s.dataset, opts(8), MaskingOptions{});
  nlohmann::json good = l.cursor();
  auto expect_error = [&](nlohmann::json c, const std::string& fragment) {
    try {
      l.restore(c);
      ADD_FAILURE() << "accepted " << c.dump();
    } catch (const util::Error& e) {
      EXPECT_EQ(e.kind(), util::ErrorKind::kInput);
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error(nlohmann::json::array(), "JSON object");
  nlohmann::json c = good;
  c.erase("epoch");
  expect_error(c, "missing \"epoch\"");
  c = good;
  c["batch_size"] = 16;
  expect_error(c, "global batch of 16 x 1 ranks, this run has 8 x 1");
  c = good;
  c["seed"] = 1;
  expect_error(c, "seed");
  c = good;
  c["dataset"] = "0000";
  expect_error(c, "another dataset");
  c = good;
  c["batch"] = l.batches_per_epoch();
  expect_error(c, "past the end");
  c = good;
  c["batch"] = -1;
  expect_error(c, "non-negative");
  // The loader still works after refused cursors.
  EXPECT_EQ(l.next().batch_size, 8);
}

TEST(DataLoader, TooFewSequencesAndBadOptions) {
  Corpus s;
  EXPECT_THROW(Loader(s.dataset, opts(100000), MaskingOptions{}), util::Error);
  EXPECT_THROW(Loader(s.dataset, opts(4, 1, 2, 2), MaskingOptions{}), util::Error);
  EXPECT_THROW(Loader(s.dataset, opts(0), MaskingOptions{}), util::Error);
}

TEST(DataLoader, WorkerErrorsAreRethrownByNext) {
  TempDir dir;
  auto vocab = testing::make_vocab();
  testing::write_shard(dir / "a.bin", *vocab, testing::random_docs(1, 30, 1, 10, 1, 20));
  auto probe = Shard::open(dir / "a.bin");
  const uint64_t tokens_at = sizeof(ShardHeader) + ((probe->settings_json().size() + 7) & ~size_t{7});
  const uint64_t n = probe->num_tokens();
  probe.reset();
  {  // Corrupt every token id after the index was made: the shard opened without verification.
    std::fstream f(dir / "a.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(tokens_at));
    std::string ff(n * 2, '\xff');
    f.write(ff.data(), static_cast<std::streamsize>(ff.size()));
  }
  SequenceOptions so;
  so.max_seq_len = 32;
  auto ds = std::make_shared<Dataset>(ShardList{Shard::open(dir / "a.bin", 0, false)}, vocab, so, 1);
  Loader l(ds, opts(4, 2), MaskingOptions{});
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      l.next();
      FAIL() << "no error";
    } catch (const util::Error& e) {
      EXPECT_EQ(e.kind(), util::ErrorKind::kInput);
      EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
    }
  }
}  // the destructor joins the stopped worker

TEST(DataEvalLoader, OnePassInOrderKeepingTheLastPartialBatch) {
  Corpus s;
  const uint64_t n = s.dataset->stats().sequences;
  int bs = 7;
  while (n % static_cast<uint64_t>(bs) == 0) ++bs;
  EvalLoader e(s.dataset, bs, MaskingOptions{}, 9);
  EXPECT_EQ(e.num_batches(), static_cast<int64_t>((n + bs - 1) / bs));
  std::vector<HostBatch> pass1, pass2;
  HostBatch b;
  uint64_t rows = 0;
  while (e.next(b)) {
    rows += static_cast<uint64_t>(b.batch_size);
    pass1.push_back(b);
  }
  EXPECT_EQ(rows, n);
  EXPECT_EQ(pass1.back().batch_size, static_cast<int>(n % static_cast<uint64_t>(bs)));
  e.reset();
  while (e.next(b)) pass2.push_back(b);
  ASSERT_EQ(pass1.size(), pass2.size());
  for (size_t i = 0; i < pass1.size(); ++i) EXPECT_TRUE(same(pass1[i], pass2[i]));
  // In index order: row 0 of batch 0 is the first sequence.
  auto index = s.dataset->sequences(0);
  std::vector<int64_t> ids(32), ty(32), at(32);
  s.dataset->fill(index->refs[0], ids.data(), ty.data(), at.data());
  EXPECT_EQ(std::vector<int64_t>(pass1[0].attention_mask.begin(), pass1[0].attention_mask.begin() + 32), at);
  // Two eval ranks split the batches.
  EvalLoader e0(s.dataset, bs, MaskingOptions{}, 9, 0, 2), e1(s.dataset, bs, MaskingOptions{}, 9, 1, 2);
  EXPECT_EQ(e0.num_batches() + e1.num_batches(), e.num_batches());
  ASSERT_TRUE(e1.next(b));
  EXPECT_TRUE(same(b, pass1[1]));
}

TEST(DataLoader, DumpBatchesWritesOneJsonLinePerSequence) {
  Corpus s;
  Loader l(s.dataset, opts(4), MaskingOptions{});
  std::ostringstream out;
  dump_batches_jsonl(l, *s.vocab, 3, out);
  std::istringstream in(out.str());
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    ++lines;
    const auto& ids = j.at("input_ids");
    const auto& tokens = j.at("tokens");
    ASSERT_EQ(ids.size(), tokens.size());
    EXPECT_EQ(tokens[0], "[CLS]");
    EXPECT_EQ(tokens[tokens.size() - 1], "[SEP]");
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(tokens[i], s.vocab->token(ids[i].get<int32_t>()));
      const int64_t label = j["labels"][i].get<int64_t>();
      EXPECT_EQ(j["label_tokens"][i].is_null(), label == -100);
    }
    EXPECT_EQ(j.at("nsp_label"), -100);
  }
  EXPECT_EQ(lines, 12);
  EXPECT_EQ(l.position().batch, 3);
}

}  // namespace
}  // namespace bert::data
