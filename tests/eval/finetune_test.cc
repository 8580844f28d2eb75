// bert-eval finetune: the classification head against transformers' BertForSequenceClassification
// (scripts/oracle/classifier_oracle.py), a learnable task from a small pre-trained checkpoint
// through the real binaries, --output-model loaded by transformers with the same predictions, the
// probe / baseline / seeds / all-checkpoints modes, determinism, and bad input.
#include <gtest/gtest.h>

#include <fstream>

#include "eval/checkpoint_loader.h"
#include "eval_fixtures.h"
#include "model/sequence_classifier.h"
#include "model/weights.h"
#include "run/checkpoint_format.h"
#include "util/atomic_file.h"
#include "util/rng.h"

namespace bert::eval {
namespace {

namespace fs = std::filesystem;
using namespace testing;

std::string classifier_oracle() { return std::string(BERT_SOURCE_DIR) + "/scripts/oracle/classifier_oracle.py"; }

const std::vector<std::string> kFiller = {"the", "of", "and", "cat", "dog", "house", "tree", "river", "city",
                                          "green", "small", "old", "runs", "sees", "bird", "sings", "sun",
                                          "road", "quiet", "ala", "ma", "kota", "rzeka", "miasto"};

// `n` sentences of 4-12 filler words; label "tak" when the word "moon" was put in, else "nie".
void write_word_task(const fs::path& file, int n, uint64_t seed) {
  util::Rng rng(seed);
  std::ofstream out(file);
  out << "text\tlabel\n";
  for (int i = 0; i < n; ++i) {
    const int words = 4 + static_cast<int>(rng.uniform(9));
    std::vector<std::string> s;
    for (int w = 0; w < words; ++w) s.push_back(kFiller[rng.uniform(kFiller.size())]);
    const bool yes = rng.uniform(2) == 1;
    if (yes) s[rng.uniform(s.size())] = "moon";
    std::string text;
    for (const auto& w : s) text += (text.empty() ? "" : " ") + w;
    out << text << "\t" << (yes ? "tak" : "nie") << "\n";
  }
}

class FinetuneTest : public ::testing::Test {
 protected:
  // One small pre-trained run shared by the tests: bert-train, 2 layers of 32, 60 steps, a
  // checkpoint at 30 and 60.
  static void SetUpTestSuite() {
    shared_ = fresh_dir("finetune_shared");
    write_vocab(shared_ / "vocab");
    write_corpus(shared_ / "corpus.txt", 120, 5);
    nlohmann::json cfg = {
        {"model", {{"hidden_size", 32}, {"num_layers", 2}, {"num_heads", 4}, {"intermediate_size", 64},
                   {"max_position_embeddings", 64}}},
        {"data", {{"train_files", {(shared_ / "corpus.txt").string()}}, {"vocab_dir", (shared_ / "vocab").string()},
                  {"max_seq_len", 32}}},
        {"training", {{"batch_size", 16}, {"max_steps", 60}, {"lr", 2e-3}, {"warmup_steps", 6},
                      {"precision", "fp32"}, {"seed", 3}}},
        {"checkpoint", {{"dir", (shared_ / "run").string()}, {"every", 30}, {"keep_last", 0}}},
        {"runtime", {{"device", "cpu"}, {"log_every", 30}, {"eval_every", 0}}}};
    util::write_file_atomic(shared_ / "run.json", cfg.dump(2));
    std::string out, err;
    pretrain_status_ = run(quote(binary("bert-train")) + " --config " + quote((shared_ / "run.json").string()), &out, &err);
    pretrain_log_ = err;
    write_word_task(shared_ / "train.tsv", 480, 11);
    write_word_task(shared_ / "test.tsv", 200, 12);
  }
  static void TearDownTestSuite() { fs::remove_all(shared_); }

  void SetUp() override {
    ASSERT_EQ(pretrain_status_, 0) << pretrain_log_;
    dir_ = fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  static std::string s(const fs::path& p) { return quote(p.string()); }
  // bert-eval finetune on the CPU with `args`; the shared task files and fp32 unless `args` names them.
  int finetune(const std::string& args, std::string* out, std::string* err) {
    std::string files;
    if (args.find("--train ") == std::string::npos) files += " --train " + s(shared_ / "train.tsv");
    if (args.find("--test ") == std::string::npos) files += " --test " + s(shared_ / "test.tsv");
    const std::string precision = args.find("--precision ") == std::string::npos ? " --precision fp32" : "";
    return run(quote(binary("bert-eval")) + " finetune --device cpu --threads 2" + precision + files + " " + args, out, err);
  }
  int oracle(const std::string& args, std::string* out) {
    std::string err;
    const int rc = run(quote(python()) + " " + quote(classifier_oracle()) + " " + args, out, &err);
    std::cout << *out;
    if (rc != 0) std::cout << err.substr(err.size() > 4000 ? err.size() - 4000 : 0);
    return rc;
  }

  static fs::path shared_;
  static int pretrain_status_;
  static std::string pretrain_log_;
  fs::path dir_;
};
fs::path FinetuneTest::shared_;
int FinetuneTest::pretrain_status_ = -1;
std::string FinetuneTest::pretrain_log_;

// Timing fields differ from run to run; everything else must not.
void drop_timings(nlohmann::json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end();) {
      const std::string& k = it.key();
      if (k == "seconds" || k.find("_per_s") != std::string::npos || k == "device") it = j.erase(it);
      else drop_timings(*it++);
    }
  } else if (j.is_array()) {
    for (auto& x : j) drop_timings(x);
  }
}

TEST_F(FinetuneTest, HeadMatchesTransformersBertForSequenceClassification) {
  auto vocab = write_vocab(dir_);
  model::BertForSequenceClassification clf(perturbed_model(vocab->size(), 5), 3, /*init_seed=*/9);
  {
    torch::NoGradGuard no_grad;  // a non-zero classifier bias, so a dropped bias shows
    for (auto& p : clf->named_parameters()) if (p.key() == "classifier.bias") p.value().uniform_(-1, 1);
  }
  clf->eval();
  torch::Tensor ids = torch::randint(5, vocab->size(), {3, 12}, torch::kInt64);
  ids.select(1, 0).fill_(vocab->cls_id());
  torch::Tensor mask = torch::ones({3, 12}, torch::kInt64);
  mask[1].slice(0, 8).fill_(0);
  ids.masked_fill_(mask.eq(0), vocab->pad_id());
  torch::Tensor types = torch::zeros({3, 12}, torch::kInt64);
  types[0].slice(0, 6).fill_(1);
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = clf->forward(ids, types, mask);
  }
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{3, 3}));
  clf->save_pretrained(dir_ / "model", {"neg", "neutral", "pos"});
  vocab->save(dir_ / "model");
  model::save_tensors(dir_ / "inputs.safetensors",
                      {{"input_ids", ids}, {"token_type_ids", types}, {"attention_mask", mask}, {"logits", logits}});
  std::string out;
  ASSERT_EQ(oracle("check-model " + s(dir_ / "model") + " " + s(dir_ / "inputs.safetensors"), &out), 0);
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["id2label"]["2"], "pos");
  EXPECT_LE(j["max_abs_diff"].get<double>(), 1e-5);
}

TEST_F(FinetuneTest, LearnsAWordTaskAndTheOutputModelLoadsInTransformersWithTheSamePredictions) {
  const fs::path ckpt = shared_ / "run" / "step-0000060";
  const std::string weights_before = util::read_file(ckpt / "model.safetensors");
  std::string out, err;
  ASSERT_EQ(finetune("--checkpoint " + s(shared_ / "run") + " --epochs 6 --lr 2e-3 --batch-size 16 --max-seq-len 32 "
                     "--json --output-model " + s(dir_ / "model"), &out, &err), 0) << err;
  const auto j = nlohmann::json::parse(out);
  const auto& m = j["models"][0];
  EXPECT_EQ(m["step"], 60);
  const auto& last = m["pretrained"]["runs"][0]["epochs"].back()["test"];
  EXPECT_GE(last["accuracy"].get<double>(), 0.95) << out;
  EXPECT_EQ(j["task"]["labels"], (nlohmann::json{"nie", "tak"}));
  EXPECT_EQ(j["task"]["test"]["examples"], 200);
  // The checkpoint is not changed.
  EXPECT_EQ(util::read_file(ckpt / "model.safetensors"), weights_before);
  EXPECT_EQ(run::verify_checkpoint(ckpt), "");
  // transformers loads the saved model and its tokenizer and predicts exactly what we scored.
  std::string predicted;
  ASSERT_EQ(oracle("predict " + s(dir_ / "model") + " " + s(shared_ / "test.tsv") + " 32", &predicted), 0);
  const auto p = nlohmann::json::parse(predicted);
  EXPECT_EQ(p["labels"], j["task"]["labels"]);
  EXPECT_EQ(p["confusion"], last["confusion"]);
}

TEST_F(FinetuneTest, ProbeKeepsTheEncoderAndBaselineSeedsAndAllCheckpointsReport) {
  std::string out, err;
  ASSERT_EQ(finetune("--checkpoint " + s(shared_ / "run") + " --all-checkpoints --probe --baseline --seeds 2 "
                     "--epochs 1 --lr 1e-3 --max-seq-len 32 --json", &out, &err), 0) << err;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["settings"]["mode"], "probe");
  ASSERT_EQ(j["models"].size(), 2u);
  EXPECT_EQ(j["models"][0]["step"], 30);
  EXPECT_EQ(j["models"][1]["step"], 60);
  for (const auto& m : j["models"]) {
    ASSERT_EQ(m["pretrained"]["runs"].size(), 2u);
    EXPECT_EQ(m["pretrained"]["runs"][1]["seed"], 43);
    ASSERT_EQ(m["baseline"]["runs"].size(), 2u);
    EXPECT_GE(m["pretrained"]["accuracy"]["std"].get<double>(), 0.0);
    EXPECT_NEAR(m["gain"]["accuracy"].get<double>(),
                m["pretrained"]["accuracy"]["mean"].get<double>() - m["baseline"]["accuracy"]["mean"].get<double>(), 1e-12);
  }
  // The readable report has a row per checkpoint, the baseline and the gain.
  ASSERT_EQ(finetune("--checkpoint " + s(shared_ / "run") + " --all-checkpoints --baseline --epochs 1 --lr 1e-3 --max-seq-len 32",
                     &out, &err), 0) << err;
  for (const char* want : {"step-0000030", "step-0000060", "baseline (random init)", "pre-training gain", "confusion matrix",
                           "training examples/s"}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << "\n" << out;
  }
  // A probe trains the pooler and the classifier only: the saved encoder is the checkpoint's.
  ASSERT_EQ(finetune("--checkpoint " + s(shared_ / "run") + " --probe --epochs 1 --lr 1e-2 --max-seq-len 32 "
                     "--output-model " + s(dir_ / "probe"), &out, &err), 0) << err;
  const auto saved = model::load_tensors(dir_ / "probe" / "model.safetensors");
  const auto original = model::load_tensors(shared_ / "run" / "step-0000060" / "model.safetensors");
  int encoder = 0, head_changed = 0;
  for (const auto& [name, t] : saved) {
    if (name.rfind("bert.embeddings.", 0) == 0 || name.rfind("bert.encoder.", 0) == 0) {
      ++encoder;
      EXPECT_TRUE(torch::equal(t, original.at(name))) << name << " changed in a probe";
    } else if (name.rfind("bert.pooler.", 0) == 0) {
      head_changed += !torch::equal(t, original.at(name));
    }
  }
  EXPECT_GT(encoder, 10);
  EXPECT_EQ(head_changed, 2) << "the pooler is part of the probed head";
}

TEST_F(FinetuneTest, SeveralRatesAreChosenOnADevSplitAndOnlyTheChosenRunIsScored) {
  std::string out, err;
  const std::string base = "--checkpoint " + s(shared_ / "run") + " --epochs 6 --batch-size 16 --max-seq-len 32 --json --seed 7";
  ASSERT_EQ(finetune(base + " --lr 1e-7,2e-3", &out, &err), 0) << err;
  EXPECT_NE(err.find("dev split of"), std::string::npos) << err;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["settings"]["lrs"], (nlohmann::json{1e-7, 2e-3}));
  const auto& run = j["models"][0]["pretrained"]["runs"][0];
  ASSERT_EQ(run["lr_search"].size(), 2u) << run.dump();
  const double dev_low = run["lr_search"][0]["dev_accuracy"], dev_high = run["lr_search"][1]["dev_accuracy"];
  // The rate with the higher dev accuracy is the one the reported run trained at.
  EXPECT_EQ(run["lr"].get<double>(), dev_high > dev_low ? 2e-3 : 1e-7) << run.dump();
  EXPECT_GT(dev_high, dev_low) << "1e-7 cannot learn the word task in 6 epochs";
  // The reported run is exactly the single-rate run on the whole training file at the chosen rate.
  std::string single;
  ASSERT_EQ(finetune(base + " --lr 2e-3", &single, &err), 0) << err;
  auto js = nlohmann::json::parse(single), jm = j;
  drop_timings(js);
  drop_timings(jm);
  EXPECT_EQ(jm["models"][0]["pretrained"]["runs"][0]["epochs"], js["models"][0]["pretrained"]["runs"][0]["epochs"]);
  EXPECT_TRUE(js["models"][0]["pretrained"]["runs"][0]["lr_search"].is_null());
  // Partner: the other rate gives other figures (so the comparison above can fail).
  std::string other;
  ASSERT_EQ(finetune(base + " --lr 1e-7", &other, &err), 0) << err;
  auto jo = nlohmann::json::parse(other);
  drop_timings(jo);
  EXPECT_NE(jo["models"][0]["pretrained"]["runs"][0]["epochs"], js["models"][0]["pretrained"]["runs"][0]["epochs"]);
  // Bad lists are usage errors.
  EXPECT_EQ(finetune(base + " --lr 1e-4,-1", &out, &err), 2) << err;
  EXPECT_EQ(finetune(base + " --lr 1e-4,2e-4 --dev-ratio 0.9", &out, &err), 2) << err;
}

TEST_F(FinetuneTest, TheSameSeedGivesTheSameFigures) {
  std::string a, b, err;
  const std::string args = "--checkpoint " + s(shared_ / "run") + " --epochs 2 --lr 1e-3 --max-seq-len 32 --json --seed 7";
  ASSERT_EQ(finetune(args, &a, &err), 0) << err;
  ASSERT_EQ(finetune(args, &b, &err), 0) << err;
  auto ja = nlohmann::json::parse(a), jb = nlohmann::json::parse(b);
  drop_timings(ja);
  drop_timings(jb);
  EXPECT_EQ(ja, jb);
  std::string c;
  ASSERT_EQ(finetune("--checkpoint " + s(shared_ / "run") + " --epochs 2 --lr 1e-3 --max-seq-len 32 --json --seed 8",
                     &c, &err), 0) << err;
  auto jc = nlohmann::json::parse(c);
  drop_timings(jc);
  EXPECT_NE(ja["models"][0]["pretrained"]["runs"][0]["epochs"], jc["models"][0]["pretrained"]["runs"][0]["epochs"]);
}

TEST_F(FinetuneTest, BadInputIsAClearErrorAndWritesNothing) {
  std::ofstream(dir_ / "extra.tsv") << "text\tlabel\nthe moon\ttak\nthe sun\tmoże\n";
  std::ofstream(dir_ / "one.tsv") << "tak\tthe moon\ntak\tthe sun\n";
  fs::create_directories(dir_ / "taken");
  std::ofstream(dir_ / "taken" / "keep.txt") << "mine";
  struct Case {
    std::string args;
    int code;
    std::string message;
  };
  const std::string ck = "--checkpoint " + s(shared_ / "run") + " --epochs 1 --max-seq-len 32 ";
  const std::vector<Case> cases = {
      {ck + "--test " + s(dir_ / "extra.tsv"), 1, "extra.tsv:3: the label \"może\" does not occur in the training file"},
      {ck + "--train " + s(dir_ / "one.tsv"), 1, "one.tsv: every example has the label \"tak\""},
      {ck + "--text-column sentence", 1, "the header has no text column \"sentence\""},
      {ck + "--output-model " + s(dir_ / "taken"), 2, "already exists and is not an empty directory"},
      {ck + "--all-checkpoints --output-model " + s(dir_ / "new"), 2, "--output-model saves one model"},
      {"--checkpoint " + s(shared_ / "run") + " --max-seq-len 65", 2, "exceeds the model's 64 positions"},
      {"--checkpoint " + s(dir_ / "nowhere"), 1, "nowhere"},
      {ck + "--seeds 0", 2, "--seeds"},
      {ck + "--precision fp16", 2, "fp16"},
  };
  for (const auto& c : cases) {
    std::string out, err;
    EXPECT_EQ(finetune(c.args, &out, &err), c.code) << c.args << "\n" << err;
    EXPECT_NE(err.find(c.message), std::string::npos) << c.args << "\n" << err;
  }
  EXPECT_EQ(util::read_file(dir_ / "taken" / "keep.txt"), "mine");
  EXPECT_FALSE(fs::exists(dir_ / "new"));
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
}

}  // namespace
}  // namespace bert::eval
