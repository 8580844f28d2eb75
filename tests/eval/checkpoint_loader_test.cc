// Checkpoint loader: checkpoint / run / Hugging Face dir resolution, verified loading, and the errors
// for missing files, damaged or truncated safetensors and vocabulary mismatches.
#include "eval/checkpoint_loader.h"

#include <gtest/gtest.h>

#include <fstream>

#include "eval_fixtures.h"
#include "model/weights.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace bert::eval {
namespace {

namespace fs = std::filesystem;
using namespace testing;

// Runs `f`, which must throw util::Error of `kind` whose message contains every needle.
template <typename F>
void expect_error(F f, util::ErrorKind kind, std::initializer_list<std::string> needles) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const util::Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << e.what();
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << "'" << n << "' not in: " << e.what();
  }
}

void expect_same_weights(model::BertForPreTraining& a, model::BertForPreTraining& b) {
  auto pb = b->named_parameters();
  for (const auto& p : a->named_parameters()) {
    ASSERT_TRUE(pb.contains(p.key())) << p.key();
    EXPECT_TRUE(torch::equal(p.value().cpu(), pb[p.key()].cpu())) << p.key();
  }
}

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    vocab_ = write_vocab(dir_ / "vocab");
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  // A Hugging Face dir: config.json + model.safetensors (model::save_pretrained) + vocab files.
  fs::path make_hf_dir(model::BertForPreTraining& m) {
    fs::path hf = dir_ / "hf";
    model::save_pretrained(m, hf);
    vocab_->save(hf);
    return hf;
  }
  fs::path dir_;
  std::shared_ptr<const wordpiece::Vocab> vocab_;
};

TEST_F(LoaderTest, RunDirResolvesToLatestCheckpointAndLoadsItsWeights) {
  auto m2 = perturbed_model(vocab_->size(), 2);
  auto m4 = perturbed_model(vocab_->size(), 4);
  save_tiny_checkpoint(dir_ / "run", m2, *vocab_, 2);
  const fs::path c4 = save_tiny_checkpoint(dir_ / "run", m4, *vocab_, 4);
  SourceKind kind = SourceKind::kHuggingFace;
  EXPECT_EQ(resolve_model_dir(dir_ / "run", &kind), c4);
  EXPECT_EQ(kind, SourceKind::kCheckpoint);

  LoadedModel loaded = load_model(dir_ / "run", torch::kCPU);
  EXPECT_EQ(loaded.dir, c4);
  EXPECT_EQ(loaded.step, 4);
  EXPECT_TRUE(loaded.has_nsp_head);
  EXPECT_FALSE(loaded.model->is_training());
  ASSERT_TRUE(loaded.run_config.has_value());
  EXPECT_EQ(loaded.run_config->data.max_seq_len, 32);
  EXPECT_EQ(loaded.vocab->size(), vocab_->size());
  EXPECT_EQ(loaded.vocab->fingerprint(), vocab_->fingerprint());
  expect_same_weights(loaded.model, m4);

  // An explicit checkpoint dir (with a trailing slash) loads that one.
  LoadedModel older = load_model((dir_ / "run" / "step-0000002").string() + "/", torch::kCPU);
  EXPECT_EQ(older.step, 2);
  expect_same_weights(older.model, m2);
}

TEST_F(LoaderTest, DamagedLatestIsSkippedInARunDirButRefusedByName) {
  auto m2 = perturbed_model(vocab_->size(), 2);
  auto m4 = perturbed_model(vocab_->size(), 4);
  const fs::path c2 = save_tiny_checkpoint(dir_ / "run", m2, *vocab_, 2);
  const fs::path c4 = save_tiny_checkpoint(dir_ / "run", m4, *vocab_, 4);
  {  // flip one byte in the middle of the tensor data
    std::fstream f(c4 / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(c4 / "model.safetensors") / 2));
    f.put('\x7f');
  }
  SourceKind kind;
  EXPECT_EQ(resolve_model_dir(dir_ / "run", &kind), c2);
  expect_error([&] { load_model(c4, torch::kCPU); }, util::ErrorKind::kInput,
               {c4.string(), "model.safetensors", "crc32"});
}

TEST_F(LoaderTest, CheckpointWithMissingFileNamesIt) {
  auto m = perturbed_model(vocab_->size(), 1);
  const fs::path c = save_tiny_checkpoint(dir_ / "run", m, *vocab_, 1);
  fs::remove(c / "vocab.txt");
  expect_error([&] { load_model(c, torch::kCPU); }, util::ErrorKind::kInput, {"vocab.txt is missing"});
  fs::remove(c / "manifest.json");
  expect_error([&] { load_model(c, torch::kCPU); }, util::ErrorKind::kInput, {"no manifest.json"});
}

TEST_F(LoaderTest, HuggingFaceDirLoadsAndReportsMissingFiles) {
  auto m = perturbed_model(vocab_->size(), 3);
  const fs::path hf = make_hf_dir(m);
  LoadedModel loaded = load_model(hf, torch::kCPU);
  EXPECT_EQ(loaded.kind, SourceKind::kHuggingFace);
  EXPECT_EQ(loaded.step, -1);
  EXPECT_FALSE(loaded.run_config.has_value());
  expect_same_weights(loaded.model, m);

  fs::remove(hf / "vocab.txt");
  fs::remove(hf / "model.safetensors");
  expect_error([&] { load_model(hf, torch::kCPU); }, util::ErrorKind::kInput,
               {hf.string(), "model.safetensors and vocab.txt"});
}

TEST_F(LoaderTest, MaskedLmOnlyWeightsLoadWithoutNspHead) {
  auto m = perturbed_model(vocab_->size(), 3);
  const fs::path hf = make_hf_dir(m);
  auto tensors = model::load_tensors(hf / "model.safetensors");
  for (const char* k : {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "cls.seq_relationship.weight",
                        "cls.seq_relationship.bias"}) {
    ASSERT_EQ(tensors.erase(k), 1u) << k;
  }
  model::save_tensors(hf / "model.safetensors", tensors);
  LoadedModel loaded = load_model(hf, torch::kCPU);
  EXPECT_FALSE(loaded.has_nsp_head);
  auto params = loaded.model->named_parameters();
  for (const auto& [k, t] : tensors) EXPECT_TRUE(torch::equal(params[k], t)) << k;

  // A real key mismatch is still an error naming the user's file, not a temporary.
  tensors.erase("cls.predictions.bias");
  model::save_tensors(hf / "model.safetensors", tensors);
  expect_error([&] { load_model(hf, torch::kCPU); }, util::ErrorKind::kInput,
               {(hf / "model.safetensors").string(), "missing", "cls.predictions.bias"});
}

TEST_F(LoaderTest, TruncatedOrCorruptSafetensorsIsReportedWithTheFileName) {
  auto m = perturbed_model(vocab_->size(), 5);
  const fs::path hf = make_hf_dir(m);
  const fs::path file = hf / "model.safetensors";
  const std::string good = util::read_file(file);

  util::write_file_atomic(file, good.substr(0, good.size() - 100));  // truncated tensor data
  expect_error([&] { load_model(hf, torch::kCPU); }, util::ErrorKind::kInput, {file.string()});

  std::string bad = good;  // header length far past the end of the file
  bad[6] = '\x10';
  util::write_file_atomic(file, bad);
  expect_error([&] { load_model(hf, torch::kCPU); }, util::ErrorKind::kInput, {file.string(), "header"});

  util::write_file_atomic(file, good.substr(0, 5));  // shorter than the 8-byte length prefix
  expect_error([&] { load_model(hf, torch::kCPU); }, util::ErrorKind::kInput, {file.string()});

  bad = good;  // a dtype the model cannot take
  const size_t at = bad.find("\"F32\"");
  ASSERT_NE(at, std::string::npos);
  bad.replace(at, 5, "\"I32\"");
  util::write_file_atomic(file, bad);
  expect_error([&] { load_model(hf, torch::kCPU); }, util::ErrorKind::kInput, {file.string(), "I32"});
}

TEST_F(LoaderTest, VocabularySizeMismatchIsAnError) {
  auto m = perturbed_model(vocab_->size(), 6);
  const fs::path hf = make_hf_dir(m);
  std::ofstream(hf / "vocab.txt", std::ios::app) << "extra\n";
  expect_error([&] { load_model(hf, torch::kCPU); }, util::ErrorKind::kInput,
               {"vocab_size " + std::to_string(vocab_->size()), std::to_string(vocab_->size() + 1) + " tokens",
                "vocab.txt"});
}

TEST_F(LoaderTest, NotAModelDir) {
  expect_error([&] { load_model(dir_ / "nope", torch::kCPU); }, util::ErrorKind::kInput, {"does not exist"});
  fs::create_directories(dir_ / "empty");
  expect_error([&] { load_model(dir_ / "empty", torch::kCPU); }, util::ErrorKind::kInput,
               {"holds no model", "config.json"});
  fs::create_directories(dir_ / "run" / "step-0000003");
  expect_error([&] { load_model(dir_ / "run", torch::kCPU); }, util::ErrorKind::kInput, {"no valid checkpoint"});
}

TEST_F(LoaderTest, ListCheckpointsOldestFirstIgnoringTemporaries) {
  for (const char* d : {"step-0000100", "step-0000002", "step-0000010", "step-0000050.tmp-123", "cache"}) {
    fs::create_directories(dir_ / "run" / d);
  }
  auto list = list_checkpoints(dir_ / "run");
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].filename(), "step-0000002");
  EXPECT_EQ(list[1].filename(), "step-0000010");
  EXPECT_EQ(list[2].filename(), "step-0000100");
  expect_error([&] { list_checkpoints(dir_ / "vocab"); }, util::ErrorKind::kInput, {"no step-*"});
}

TEST_F(LoaderTest, DefaultCacheDirIsNeverInsideTheModelDir) {
  auto m = perturbed_model(vocab_->size(), 7);
  save_tiny_checkpoint(dir_ / "run", m, *vocab_, 1);
  LoadedModel in_run = load_model(dir_ / "run", torch::kCPU);
  EXPECT_EQ(default_cache_dir(in_run), fs::absolute(dir_ / "run") / "cache");

  LoadedModel hf = load_model(make_hf_dir(m), torch::kCPU);
  const fs::path cache = default_cache_dir(hf);
  EXPECT_EQ(cache.string().find(hf.dir.string()), std::string::npos) << cache;
  EXPECT_EQ(cache.parent_path().parent_path(), fs::temp_directory_path());
}

}  // namespace
}  // namespace bert::eval
