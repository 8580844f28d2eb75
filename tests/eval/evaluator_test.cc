// Evaluator: metrics against an independent full-logits computation, the overall combination,
// deterministic seeded masking, NSP accuracy, bad input, and the table.
#include "eval/evaluator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include "data/batch.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "eval_fixtures.h"
#include "train/checkpoint.h"
#include "run/mlm_metrics.h"
#include "util/error.h"
#include "util/rng.h"

namespace bert::eval {
namespace {

namespace fs = std::filesystem;
using namespace testing;

class EvaluatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    auto vocab = write_vocab(dir_ / "vocab");
    auto m = perturbed_model(vocab->size(), 11);
    ckpt_ = save_tiny_checkpoint(dir_ / "run", m, *vocab, 5);
    write_corpus(dir_ / "a.txt", 12, 1);
    write_corpus(dir_ / "b.txt", 7, 2);
    model_ = load_model(dir_ / "run", torch::kCPU);
    options_.files = {dir_ / "a.txt", dir_ / "b.txt"};
    options_.batch_size = 5;
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  fs::path dir_, ckpt_;
  LoadedModel model_;
  EvalOptions options_;
};

TEST(Combine, WeightsByPredictionsAndSequences) {
  FileMetrics a, b;
  a.metrics.loss = 2.0; a.metrics.accuracy = 0.5; a.metrics.top5 = 0.75; a.metrics.predictions = 100;
  a.metrics.sequences = 10; a.metrics.tokens = 1000; a.metrics.seconds = 1.0; a.metrics.nsp_accuracy = 0.6;
  b.metrics.loss = 4.0; b.metrics.accuracy = 0.25; b.metrics.top5 = 0.5; b.metrics.predictions = 300;
  b.metrics.sequences = 30; b.metrics.tokens = 3000; b.metrics.seconds = 2.0; b.metrics.nsp_accuracy = 0.8;
  run::MlmMetrics all = combine({a, b});
  EXPECT_DOUBLE_EQ(all.loss, (2.0 * 100 + 4.0 * 300) / 400);
  EXPECT_DOUBLE_EQ(all.accuracy, (50.0 + 75.0) / 400);
  EXPECT_DOUBLE_EQ(all.top5, (75.0 + 150.0) / 400);
  EXPECT_DOUBLE_EQ(all.perplexity, std::exp(3.5));
  EXPECT_DOUBLE_EQ(all.nsp_accuracy, (6.0 + 24.0) / 40);
  EXPECT_EQ(all.predictions, 400);
  EXPECT_EQ(all.sequences, 40);
  EXPECT_EQ(all.tokens, 4000);
  EXPECT_DOUBLE_EQ(all.seconds, 3.0);
  b.metrics.nsp_accuracy = -1;
  EXPECT_DOUBLE_EQ(combine({b}).nsp_accuracy, -1);
}

// Loss and accuracies recomputed from the full [B, T, V] logits of the same masked batches.
TEST_F(EvaluatorTest, MetricsMatchAFullLogitsComputation) {
  EvalReport r = evaluate(model_, options_, torch::kCPU);
  ASSERT_EQ(r.files.size(), 2u);
  EXPECT_EQ(r.step, 5);
  EXPECT_EQ(r.checkpoint, ckpt_);

  data::DataOptions d = eval_data_options(model_, options_);
  EXPECT_EQ(d.max_seq_len, 32);  // from the checkpoint's run config
  for (size_t i = 0; i < 2; ++i) {
    auto ds = data::prepare_dataset({options_.files[i]}, model_.vocab, d, options_.seed);
    data::EvalLoader loader(ds, options_.batch_size, eval_masking_options(model_, options_),
                            util::derive_seed(options_.seed, "valid"));
    double loss = 0;
    int64_t n = 0, top1 = 0, top5 = 0, tokens = 0, sequences = 0;
    torch::NoGradGuard no_grad;
    for (data::HostBatch h; loader.next(h);) {
      data::Batch b = data::to_device(h, torch::kCPU);
      torch::Tensor logits = model_.model->logits(b.input_ids, b.token_type_ids, b.attention_mask).first;  // [B, T, V]
      torch::Tensor sel = b.mlm_labels.ne(-100);                          // [B, T]
      torch::Tensor l = logits.index({sel});                              // [N, V]
      torch::Tensor y = b.mlm_labels.index({sel});                        // [N]
      loss += torch::nn::functional::cross_entropy(
                  l, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)).item<double>();
      top1 += l.argmax(-1).eq(y).sum().item<int64_t>();
      top5 += std::get<1>(l.topk(5, -1)).eq(y.unsqueeze(1)).any(1).sum().item<int64_t>();
      n += y.numel();
      tokens += h.num_real_tokens;
      sequences += h.batch_size;
    }
    const run::MlmMetrics& m = r.files[i].metrics;
    ASSERT_GT(n, 0);
    EXPECT_EQ(m.predictions, n);
    EXPECT_EQ(m.tokens, tokens);
    EXPECT_EQ(m.sequences, sequences);
    EXPECT_NEAR(m.loss, loss / n, 1e-5);
    EXPECT_DOUBLE_EQ(m.accuracy, static_cast<double>(top1) / n);
    EXPECT_DOUBLE_EQ(m.top5, static_cast<double>(top5) / n);
    EXPECT_NEAR(m.perplexity, std::exp(m.loss), 1e-9 * m.perplexity);
    EXPECT_EQ(m.nsp_accuracy, -1);
    EXPECT_EQ(r.files[i].file, options_.files[i].string());
  }
  // A random model over ~100 tokens: the loss is far above 0 and accuracy is low but measured.
  EXPECT_GT(r.overall.metrics.loss, 1.0);
  EXPECT_EQ(r.overall.metrics.predictions, r.files[0].metrics.predictions + r.files[1].metrics.predictions);
  EXPECT_NEAR(r.overall.metrics.loss,
              (r.files[0].metrics.loss * r.files[0].metrics.predictions +
               r.files[1].metrics.loss * r.files[1].metrics.predictions) / r.overall.metrics.predictions, 1e-12);
}

// Data-parallel validation: rank r of W takes batches r, r + W, ... and the sums are reduced; the
// figures equal one process's over the whole pass (the loss up to float64 rounding of the sum).
TEST_F(EvaluatorTest, ShardsSummedOverRanksGiveOneProcessesFigures) {
  data::DataOptions d = eval_data_options(model_, options_);
  auto ds = data::prepare_dataset({options_.files[0]}, model_.vocab, d, options_.seed);
  const auto masking = eval_masking_options(model_, options_);
  const uint64_t seed = util::derive_seed(options_.seed, "valid");
  auto pass = [&](int rank, int world, const run::SumOverRanks& reduce) {
    data::EvalLoader loader(ds, options_.batch_size, masking, seed, rank, world);
    return run::evaluate_mlm(model_.model, [&](data::HostBatch& b) { return loader.next(b); }, torch::kCPU, "fp32",
                               0, reduce);
  };
  const run::MlmMetrics one = pass(0, 1, nullptr);
  torch::Tensor rank1_sums;
  const run::MlmMetrics rank1 = pass(1, 2, [&](torch::Tensor& s) { rank1_sums = s.clone(); });
  const run::MlmMetrics both = pass(0, 2, [&](torch::Tensor& s) { s.add_(rank1_sums); });  // rank 0's all-reduce
  ASSERT_GT(rank1.predictions, 0);
  EXPECT_LT(rank1.predictions, one.predictions);  // rank 1 alone saw a part
  EXPECT_EQ(both.predictions, one.predictions);
  EXPECT_EQ(both.sequences, one.sequences);
  EXPECT_EQ(both.tokens, one.tokens);
  EXPECT_DOUBLE_EQ(both.accuracy, one.accuracy);
  EXPECT_DOUBLE_EQ(both.top5, one.top5);
  EXPECT_NEAR(both.loss, one.loss, 1e-12 * one.loss);
}

TEST_F(EvaluatorTest, MaskingIsDeterministicInTheSeed) {
  EvalReport a = evaluate(model_, options_, torch::kCPU);
  EvalReport b = evaluate(model_, options_, torch::kCPU);
  EXPECT_EQ(a.overall.metrics.loss, b.overall.metrics.loss);
  EXPECT_EQ(a.overall.metrics.predictions, b.overall.metrics.predictions);
  options_.batch_size = 3;  // batching does not change which tokens are masked
  EvalReport c = evaluate(model_, options_, torch::kCPU);
  EXPECT_EQ(a.overall.metrics.predictions, c.overall.metrics.predictions);
  EXPECT_NEAR(a.overall.metrics.loss, c.overall.metrics.loss, 1e-5);
  options_.seed = 43;
  EvalReport d = evaluate(model_, options_, torch::kCPU);
  EXPECT_NE(a.overall.metrics.loss, d.overall.metrics.loss);
  EXPECT_EQ(d.settings["seed"], 43);
}

TEST_F(EvaluatorTest, MaxBatchesCapsEachFile) {
  options_.max_batches = 1;
  EvalReport r = evaluate(model_, options_, torch::kCPU);
  EXPECT_EQ(r.files[0].metrics.sequences, options_.batch_size);
  EXPECT_EQ(r.files[1].metrics.sequences, options_.batch_size);
}

TEST_F(EvaluatorTest, NspAccuracyOnlyWithNspPairs) {
  options_.nsp = true;
  EvalReport r = evaluate(model_, options_, torch::kCPU);
  EXPECT_EQ(r.settings["packing"], "nsp-pairs");
  for (const auto& f : r.files) {
    EXPECT_GE(f.metrics.nsp_accuracy, 0.0);
    EXPECT_LE(f.metrics.nsp_accuracy, 1.0);
  }
  // A head that always says "IsNext" scores the share of IsNext pairs, one that always says
  // "NotNext" the rest: the two accuracies add up to 1, and the pairs are about 50/50.
  auto params = model_.model->named_parameters();
  double always[2];
  for (int cls : {0, 1}) {
    torch::NoGradGuard g;
    params["cls.seq_relationship.weight"].zero_();
    params["cls.seq_relationship.bias"].copy_(torch::tensor({cls == 0 ? 50.0f : -50.0f, cls == 0 ? -50.0f : 50.0f}));
    always[cls] = evaluate(model_, options_, torch::kCPU).overall.metrics.nsp_accuracy;
  }
  EXPECT_NEAR(always[0] + always[1], 1.0, 1e-12);
  EXPECT_NEAR(always[0], 0.5, 0.15);
  EXPECT_TRUE(r.to_json()["overall"].contains("nsp_accuracy"));
  model_.has_nsp_head = false;
  EXPECT_THROW(evaluate(model_, options_, torch::kCPU), util::Error);
}

TEST_F(EvaluatorTest, NeverWritesIntoTheCheckpointAndReusesTheRunCache) {
  std::set<std::string> before;
  for (const auto& e : fs::directory_iterator(ckpt_)) before.insert(e.path().filename().string());
  EvalReport r = evaluate(model_, options_, torch::kCPU);
  std::set<std::string> after;
  for (const auto& e : fs::directory_iterator(ckpt_)) after.insert(e.path().filename().string());
  EXPECT_EQ(before, after);
  EXPECT_EQ(run::verify_checkpoint(ckpt_), "");
  EXPECT_TRUE(fs::is_directory(dir_ / "run" / "cache"));
  EXPECT_EQ(r.settings["cache_dir"], (fs::absolute(dir_ / "run") / "cache").string());
}

TEST_F(EvaluatorTest, BadInputIsReported) {
  std::ofstream(dir_ / "empty.txt").close();
  options_.files = {dir_ / "empty.txt"};
  try {
    evaluate(model_, options_, torch::kCPU);
    ADD_FAILURE() << "no error for an empty file";
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("empty.txt"), std::string::npos) << e.what();
  }
  options_.files = {dir_ / "missing.txt"};
  EXPECT_THROW(evaluate(model_, options_, torch::kCPU), util::Error);

  options_.files = {dir_ / "a.txt"};
  options_.max_seq_len = 65;  // the model has 64 positions
  try {
    evaluate(model_, options_, torch::kCPU);
    ADD_FAILURE() << "no error for max_seq_len > max_position_embeddings";
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("max_position_embeddings 64"), std::string::npos) << e.what();
  }
  options_.max_seq_len = 0;
  options_.precision = "fp8";
  EXPECT_THROW(evaluate(model_, options_, torch::kCPU), util::Error);
}

TEST_F(EvaluatorTest, TableHasOneRowPerFileAndOverall) {
  EvalReport r = evaluate(model_, options_, torch::kCPU);
  const std::string table = format_table({r});
  EXPECT_NE(table.find("loss"), std::string::npos);
  EXPECT_NE(table.find("top5"), std::string::npos);
  EXPECT_NE(table.find(options_.files[0].string()), std::string::npos);
  EXPECT_NE(table.find(options_.files[1].string()), std::string::npos);
  EXPECT_NE(table.find("overall"), std::string::npos);
  char loss[32];
  std::snprintf(loss, sizeof loss, "%.4f", r.overall.metrics.loss);
  EXPECT_NE(table.find(loss), std::string::npos) << table;
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 4);  // header, 2 files, overall
}

}  // namespace
}  // namespace bert::eval
