// The Hugging Face bridge, checked against transformers (scripts/oracle/hf_bridge_oracle.py):
// our checkpoints load in transformers with identical logits, tokens and fill-mask predictions;
// transformers dirs load here with identical logits and round-trip bit for bit; bert-train starts
// from a transformers dir (training.init_from).
#include <gtest/gtest.h>

#include <fstream>

#include "eval/checkpoint_loader.h"
#include "eval/fill_mask.h"
#include "eval_fixtures.h"
#include "model/weights.h"
#include "train/checkpoint.h"
#include "util/atomic_file.h"
#include "wordpiece/tokenizer.h"

namespace bert::eval {
namespace {

namespace fs = std::filesystem;
using namespace testing;

class HfBridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    vocab_ = write_vocab(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  // Runs the oracle; its JSON line goes to the test log; returns its exit status.
  int oracle(const std::string& args) {
    std::string out, err;
    const int rc = run(quote(python()) + " " + quote(oracle_script()) + " " + args, &out, &err);
    std::cout << out;
    if (rc != 0) std::cout << err.substr(err.size() > 4000 ? err.size() - 4000 : 0);
    return rc;
  }
  fs::path dir_;
  std::shared_ptr<const wordpiece::Vocab> vocab_;

  // `ckpt` loads in transformers (BertForPreTraining, BertForMaskedLM, AutoTokenizer) with the logits,
  // tokens and fill-mask predictions of this project's model.
  void expect_loads_in_transformers(const fs::path& ckpt);
};

void HfBridgeTest::expect_loads_in_transformers(const fs::path& ckpt) {
  // A padded batch with both segments; logits of the C++ model.
  torch::Tensor ids = torch::randint(5, vocab_->size(), {3, 14}, torch::kInt64);  // [B, T]
  ids.select(1, 0).fill_(vocab_->cls_id());
  torch::Tensor mask = torch::ones({3, 14}, torch::kInt64);
  mask[1].slice(0, 10).fill_(0);
  mask[2].slice(0, 6).fill_(0);
  ids.masked_fill_(mask.eq(0), vocab_->pad_id());
  torch::Tensor types = torch::zeros({3, 14}, torch::kInt64);
  types[0].slice(0, 7).fill_(1);
  types[1].slice(0, 5, 10).fill_(1);
  LoadedModel loaded = load_model(ckpt, torch::kCPU);
  torch::NoGradGuard no_grad;
  auto [mlm, nsp] = loaded.model->logits(ids, types, mask);
  model::save_tensors(dir_ / "inputs.safetensors", {{"input_ids", ids}, {"token_type_ids", types}, {"attention_mask", mask}});
  model::save_tensors(dir_ / "cpp_logits.safetensors", {{"mlm", mlm.contiguous()}, {"nsp", nsp.contiguous()}});

  const std::vector<std::string> texts = {"Ala ma kota.", "The OLD river, the new City!", "paintings sing quietly",
                                          "Natura tworzy piękne obrazy", "xyzzy unknown-words?", "  spaced\tout  "};
  wordpiece::Tokenizer tok(loaded.vocab);
  nlohmann::json tokens = {{"texts", texts}, {"ids", nlohmann::json::array()}};
  for (const auto& t : texts) tokens["ids"].push_back(tok.encode_ids(t));
  util::write_file_atomic(dir_ / "cpp_tokens.json", tokens.dump());

  FillMask filler(loaded, torch::kCPU);
  nlohmann::json fills = nlohmann::json::array();
  for (const char* t : {"the [MASK] sees a bird.", "Ala ma [MASK].", "[MASK] river and [MASK] city"}) {
    fills.push_back(filler.predict(t, 5).to_json());
  }
  util::write_file_atomic(dir_ / "cpp_fill_mask.json", fills.dump());

  EXPECT_EQ(oracle("check-checkpoint " + quote(dir_.string()) + " " + quote(ckpt.string())), 0);
}

TEST_F(HfBridgeTest, OurCheckpointLoadsInTransformersWithTheSameLogitsTokensAndFillMask) {
  auto m = perturbed_model(vocab_->size(), 31);
  expect_loads_in_transformers(save_tiny_checkpoint(dir_ / "run", m, *vocab_, 3));
}

// What bert-train itself writes, trained in fp32 and in bf16, loads in transformers the same way.
TEST_F(HfBridgeTest, BertTrainCheckpointsLoadInTransformersFp32AndBf16) {
  write_corpus(dir_ / "train.txt", 30, 5);
  for (const std::string precision : {"fp32", "bf16"}) {
    SCOPED_TRACE(precision);
    const fs::path run_dir = dir_ / ("trained-" + precision);
    nlohmann::json cfg = {
        {"model", {{"hidden_size", 32}, {"num_layers", 2}, {"num_heads", 4}, {"intermediate_size", 37},
                   {"max_position_embeddings", 64}}},
        {"data", {{"train_files", {(dir_ / "train.txt").string()}}, {"vocab_dir", dir_.string()}, {"max_seq_len", 32}}},
        {"training", {{"batch_size", 4}, {"max_steps", 3}, {"lr", 1e-2}, {"warmup_steps", 0}, {"precision", precision}}},
        {"checkpoint", {{"dir", run_dir.string()}, {"every", 3}}},
        {"runtime", {{"device", "cpu"}, {"log_every", 1}}}};
    util::write_file_atomic(dir_ / "trained.json", cfg.dump(2));
    std::string out, err;
    ASSERT_EQ(run(quote(binary("bert-train")) + " --config " + quote((dir_ / "trained.json").string()), &out, &err), 0)
        << err;
    expect_loads_in_transformers(run_dir / "step-0000003");
  }
}

TEST_F(HfBridgeTest, TransformersDirLoadsHereRoundTripsBitExactAndInitialisesTraining) {
  ASSERT_EQ(oracle("make-hf " + quote(dir_.string())), 0);
  auto inputs = model::load_tensors(dir_ / "inputs.safetensors");
  auto expected = model::load_tensors(dir_ / "hf_logits.safetensors");
  torch::NoGradGuard no_grad;

  // transformers BertForPreTraining dir -> our model: same logits.
  LoadedModel pre = load_model(dir_ / "hf", torch::kCPU);
  EXPECT_EQ(pre.kind, SourceKind::kHuggingFace);
  EXPECT_TRUE(pre.has_nsp_head);
  auto [mlm, nsp] = pre.model->logits(inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"]);
  EXPECT_LT((mlm - expected["pre_mlm"]).abs().max().item<double>(), 1e-5);
  EXPECT_LT((nsp - expected["pre_nsp"]).abs().max().item<double>(), 1e-5);

  // transformers BertForMaskedLM dir (no pooler, no NSP head): same MLM logits.
  LoadedModel mlm_only = load_model(dir_ / "hf_mlm", torch::kCPU);
  EXPECT_FALSE(mlm_only.has_nsp_head);
  auto mlm2 = mlm_only.model->logits(inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"]).first;
  EXPECT_LT((mlm2 - expected["mlm_mlm"]).abs().max().item<double>(), 1e-5);

  // HF -> this tool -> HF: every tensor bit for bit.
  train::CheckpointContents c;
  c.optimizer_state["step"] = torch::zeros({1});
  const fs::path rt = train::save_checkpoint(dir_ / "roundtrip", pre.model, *pre.vocab, c);
  EXPECT_EQ(oracle("same-tensors " + quote((dir_ / "hf" / "model.safetensors").string()) + " " +
                   quote((rt / "model.safetensors").string())), 0);

  // bert-train from the transformers dir with lr = 0: the checkpoint it writes holds exactly the HF
  // weights (a run that ignored init_from would hold a fresh random init and fail this).
  write_corpus(dir_ / "train.txt", 30, 5);
  nlohmann::json cfg = {
      {"data", {{"train_files", {(dir_ / "train.txt").string()}}, {"vocab_dir", (dir_ / "hf").string()},
                {"max_seq_len", 32}}},
      {"training", {{"batch_size", 4}, {"max_steps", 2}, {"lr", 0.0}, {"warmup_steps", 0},
                    {"precision", "fp32"}, {"init_from", (dir_ / "hf").string()}}},
      {"checkpoint", {{"dir", (dir_ / "train_run").string()}, {"every", 2}}},
      {"runtime", {{"device", "cpu"}, {"log_every", 1}}}};
  util::write_file_atomic(dir_ / "run.json", cfg.dump(2));
  std::string out, err;
  ASSERT_EQ(run(quote(binary("bert-train")) + " --config " + quote((dir_ / "run.json").string()), &out, &err), 0) << err;
  EXPECT_NE(err.find("starting from the Hugging Face model"), std::string::npos) << err;
  const fs::path trained = dir_ / "train_run" / "step-0000002";
  ASSERT_EQ(run::verify_checkpoint(trained), "");
  EXPECT_EQ(oracle("same-tensors " + quote((dir_ / "hf" / "model.safetensors").string()) + " " +
                   quote((trained / "model.safetensors").string())), 0);

  // A BertForMaskedLM dir (no pooler, no NSP head) is a valid starting point too: the head starts
  // from random init, with a warning.
  cfg["training"]["init_from"] = (dir_ / "hf_mlm").string();
  cfg["checkpoint"]["dir"] = (dir_ / "train_run_mlm").string();
  util::write_file_atomic(dir_ / "run_mlm.json", cfg.dump(2));
  ASSERT_EQ(run(quote(binary("bert-train")) + " --config " + quote((dir_ / "run_mlm.json").string()), &out, &err), 0)
      << err;
  EXPECT_NE(err.find("has no pooler/NSP head"), std::string::npos) << err;
  EXPECT_EQ(run::verify_checkpoint(dir_ / "train_run_mlm" / "step-0000002"), "");
}

}  // namespace
}  // namespace bert::eval
