// bert-eval through the real binary: JSON and table reports, --all-checkpoints, fill-mask, agreement
// with the validation numbers bert-train logged, and the exit codes and messages for bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "eval/checkpoint_loader.h"
#include "eval/evaluator.h"
#include "eval_fixtures.h"
#include "model/weights.h"
#include "util/atomic_file.h"
#include "util/json.h"

namespace bert::eval {
namespace {

namespace fs = std::filesystem;
using namespace testing;

class BertEvalCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    vocab_ = write_vocab(dir_ / "vocab");
    auto m2 = perturbed_model(vocab_->size(), 41);
    auto m4 = perturbed_model(vocab_->size(), 42);
    save_tiny_checkpoint(dir_ / "run", m2, *vocab_, 2);
    save_tiny_checkpoint(dir_ / "run", m4, *vocab_, 4);
    write_corpus(dir_ / "a.txt", 10, 1);
    write_corpus(dir_ / "b.txt", 6, 2);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  // Runs bert-eval with `args` on the CPU; returns the exit status.
  int eval(const std::string& args, std::string* out = nullptr, std::string* err = nullptr) {
    return run(quote(binary("bert-eval")) + " --device cpu " + args, out, err);
  }
  int fill(const std::string& args, std::string* out = nullptr, std::string* err = nullptr) {
    return run(quote(binary("bert-eval")) + " fill-mask --device cpu " + args, out, err);
  }
  std::string p(const std::string& name) { return quote((dir_ / name).string()); }
  // A Hugging Face dir copy of checkpoint step-4 (no manifest, so the model layer's checks apply).
  fs::path hf_dir() {
    const fs::path hf = dir_ / "hf";
    fs::create_directories(hf);
    for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"}) {
      fs::copy_file(dir_ / "run" / "step-0000004" / f, hf / f, fs::copy_options::overwrite_existing);
    }
    return hf;
  }
  fs::path dir_;
  std::shared_ptr<const wordpiece::Vocab> vocab_;
};

TEST_F(BertEvalCliTest, JsonReportOfTheLatestCheckpointMatchesTheLibrary) {
  std::string out, err;
  ASSERT_EQ(eval("--checkpoint " + p("run") + " --data " + p("a.txt") + " " + p("b.txt") + " --json --seed 9 "
                 "--batch-size 6", &out, &err), 0) << err;
  const nlohmann::json j = nlohmann::json::parse(out);
  EXPECT_EQ(j["step"], 4);
  EXPECT_EQ(j["checkpoint"], (dir_ / "run" / "step-0000004").string());
  ASSERT_EQ(j["files"].size(), 2u);
  EXPECT_EQ(j["files"][0]["file"], (dir_ / "a.txt").string());
  const auto& all = j["overall"];
  EXPECT_EQ(all["predictions"].get<int64_t>(),
            j["files"][0]["predictions"].get<int64_t>() + j["files"][1]["predictions"].get<int64_t>());
  EXPECT_NEAR(all["perplexity"].get<double>(), std::exp(all["loss"].get<double>()), 1e-6 * all["perplexity"].get<double>());
  EXPECT_GE(all["top5_accuracy"].get<double>(), all["accuracy"].get<double>());
  EXPECT_GT(all["tokens_per_s"].get<double>(), 0);
  EXPECT_FALSE(all.contains("nsp_accuracy"));
  EXPECT_EQ(j["settings"]["seed"], 9);
  EXPECT_EQ(j["settings"]["max_seq_len"], 32);

  // The same numbers in-process (deterministic masking across processes).
  LoadedModel m = load_model(dir_ / "run", torch::kCPU);
  EvalOptions o;
  o.files = {dir_ / "a.txt", dir_ / "b.txt"};
  o.seed = 9;
  o.batch_size = 6;
  EvalReport r = evaluate(m, o, torch::kCPU);
  EXPECT_EQ(r.overall.metrics.predictions, all["predictions"].get<int64_t>());
  EXPECT_NEAR(r.overall.metrics.loss, all["loss"].get<double>(), 1e-9);
  EXPECT_DOUBLE_EQ(r.overall.metrics.accuracy, all["accuracy"].get<double>());
}

TEST_F(BertEvalCliTest, TableByDefaultAndNspWithTheFlag) {
  std::string out, err;
  ASSERT_EQ(eval("-c " + p("run/step-0000002") + " -d " + p("a.txt") + " " + p("b.txt") + " --nsp", &out, &err), 0) << err;
  std::istringstream lines(out);
  std::vector<std::string> rows;
  for (std::string l; std::getline(lines, l);) rows.push_back(l);
  ASSERT_EQ(rows.size(), 4u) << out;
  EXPECT_NE(rows[0].find("loss"), std::string::npos);
  EXPECT_NE(rows[0].find("nsp"), std::string::npos);
  EXPECT_EQ(rows[1].find("       2  " + (dir_ / "a.txt").string()), 0u) << rows[1];
  EXPECT_NE(rows[3].find("overall"), std::string::npos);
  EXPECT_EQ(rows[3].find(" - "), std::string::npos) << "NSP accuracy missing: " << rows[3];
}

TEST_F(BertEvalCliTest, AllCheckpointsWritesAPlotReadyFile) {
  std::string out, err;
  ASSERT_EQ(eval("--all-checkpoints " + p("run") + " --data " + p("a.txt") + " --json --output " + p("curve.json"),
                 &out, &err), 0) << err;
  EXPECT_EQ(out, "");
  const nlohmann::json j = util::parse_json_file(dir_ / "curve.json");
  ASSERT_EQ(j["checkpoints"].size(), 2u);
  EXPECT_EQ(j["checkpoints"][0]["step"], 2);
  EXPECT_EQ(j["checkpoints"][1]["step"], 4);
  // Different weights, same masked tokens: equal prediction counts, different losses.
  EXPECT_EQ(j["checkpoints"][0]["overall"]["predictions"], j["checkpoints"][1]["overall"]["predictions"]);
  EXPECT_NE(j["checkpoints"][0]["overall"]["loss"], j["checkpoints"][1]["overall"]["loss"]);

  ASSERT_EQ(eval("--all-checkpoints " + p("run") + " --data " + p("a.txt"), &out, &err), 0) << err;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3) << out;  // header + one row per checkpoint
}

TEST_F(BertEvalCliTest, FillMaskFromArgumentsAndStdin) {
  std::string out, err;
  ASSERT_EQ(fill("--checkpoint " + p("run") + " --top-k 3 --json 'the [MASK] runs.' 'ala ma [MASK] [MASK]'", &out, &err), 0) << err;
  nlohmann::json j = nlohmann::json::parse(out);
  ASSERT_EQ(j.size(), 2u);
  ASSERT_EQ(j[0]["masks"].size(), 1u);
  ASSERT_EQ(j[1]["masks"].size(), 2u);
  // A text that starts with "[" and ends with "]" is taken verbatim (not as a bracketed list).
  std::string bracketed;
  ASSERT_EQ(fill("--checkpoint " + p("run") + " --json '[MASK] and [MASK]'", &bracketed, &err), 0) << err;
  EXPECT_EQ(nlohmann::json::parse(bracketed)[0]["masks"].size(), 2u) << bracketed;
  for (const auto& r : j) {
    for (const auto& m : r["masks"]) {
      ASSERT_EQ(m["candidates"].size(), 3u);
      double sum = 0, prev = 2;
      for (const auto& c : m["candidates"]) {
        const double pr = c["probability"].get<double>();
        EXPECT_GT(pr, 0);
        EXPECT_LE(pr, prev);
        prev = pr;
        sum += pr;
        EXPECT_EQ(c["token"], vocab_->token(c["id"].get<int32_t>()));
      }
      EXPECT_LE(sum, 1.0 + 1e-6);
    }
  }
  ASSERT_EQ(run("printf 'the [MASK] runs.\\n\\nold [MASK]\\n' | " + quote(binary("bert-eval")) +
                " fill-mask --device cpu -c " + p("run"), &out, &err), 0) << err;
  EXPECT_EQ(out.find("the [MASK] runs.\n"), 0u) << out;
  EXPECT_NE(out.find("old [MASK]\n"), std::string::npos) << out;
  EXPECT_NE(out.find("   5  0."), std::string::npos) << out;  // five candidates each by default
  EXPECT_EQ(out.find("   6  0."), std::string::npos) << out;
}

TEST_F(BertEvalCliTest, BadInputGivesAClearMessageAndTheRightExitCode) {
  std::string out, err;
  // Usage errors: 2.
  EXPECT_EQ(eval("--checkpoint " + p("run"), &out, &err), 2);
  EXPECT_NE(err.find("--data"), std::string::npos) << err;
  EXPECT_EQ(eval("--checkpoint " + p("run") + " --all-checkpoints " + p("run") + " -d " + p("a.txt"), &out, &err), 2);
  EXPECT_EQ(eval("--checkpoint " + p("run") + " -d " + p("a.txt") + " --no-such-flag", &out, &err), 2);
  EXPECT_EQ(eval("--checkpoint " + p("run") + " -d " + p("a.txt") + " --max-seq-len 100", &out, &err), 2);
  EXPECT_NE(err.find("max_position_embeddings 64"), std::string::npos) << err;
  EXPECT_EQ(fill("-c " + p("run") + " 'no mask at all'", &out, &err), 2);
  EXPECT_NE(err.find("has no [MASK]"), std::string::npos) << err;

  // Input errors: 1, naming what is wrong.
  EXPECT_EQ(eval("--checkpoint " + p("nowhere") + " -d " + p("a.txt"), &out, &err), 1);
  EXPECT_NE(err.find("does not exist"), std::string::npos) << err;
  std::ofstream(dir_ / "empty.txt").close();
  EXPECT_EQ(eval("--checkpoint " + p("run") + " -d " + p("empty.txt"), &out, &err), 1);
  EXPECT_NE(err.find("empty.txt"), std::string::npos) << err;
  EXPECT_NE(err.find("empty"), std::string::npos) << err;

  const fs::path hf = hf_dir();
  const std::string good = util::read_file(hf / "model.safetensors");
  util::write_file_atomic(hf / "model.safetensors", good.substr(0, good.size() / 2));
  EXPECT_EQ(eval("--checkpoint " + p("hf") + " -d " + p("a.txt"), &out, &err), 1);
  EXPECT_NE(err.find((hf / "model.safetensors").string()), std::string::npos) << err;
  std::string bad = good;
  bad[5] = '\x01';  // header length ~2^40
  util::write_file_atomic(hf / "model.safetensors", bad);
  EXPECT_EQ(fill("-c " + p("hf") + " 'the [MASK]'", &out, &err), 1);
  EXPECT_NE(err.find("header length"), std::string::npos) << err;
  EXPECT_NE(err.find((hf / "model.safetensors").string()), std::string::npos) << err;

  util::write_file_atomic(hf / "model.safetensors", good);
  std::ofstream(hf / "vocab.txt", std::ios::app) << "extra\n";
  EXPECT_EQ(eval("--checkpoint " + p("hf") + " -d " + p("a.txt"), &out, &err), 1);
  EXPECT_NE(err.find("vocab_size " + std::to_string(vocab_->size())), std::string::npos) << err;

  fs::remove(dir_ / "run" / "step-0000004" / "config.json");
  EXPECT_EQ(eval("--checkpoint " + p("run/step-0000004") + " -d " + p("a.txt"), &out, &err), 1);
  EXPECT_NE(err.find("config.json is missing"), std::string::npos) << err;
}

// A real training run: bert-eval with the run's seed, batch size and precision reproduces the
// validation numbers bert-train logged for the same checkpoint.
TEST_F(BertEvalCliTest, ReproducesTheValidationNumbersOfBertTrain) {
  write_corpus(dir_ / "train.txt", 40, 3);
  nlohmann::json cfg = {
      {"model", {{"hidden_size", 32}, {"num_layers", 2}, {"num_heads", 4}, {"intermediate_size", 64},
                 {"max_position_embeddings", 64}}},
      {"data", {{"train_files", {(dir_ / "train.txt").string()}}, {"valid_files", {(dir_ / "a.txt").string()}},
                {"vocab_dir", (dir_ / "vocab").string()}, {"max_seq_len", 48}}},
      {"masking", {{"mask_prob", 0.2}}},
      {"training", {{"batch_size", 8}, {"max_steps", 6}, {"lr", 1e-3}, {"warmup_steps", 2},
                    {"precision", "fp32"}, {"seed", 7}}},
      {"checkpoint", {{"dir", (dir_ / "trained").string()}, {"every", 3}}},
      {"runtime", {{"device", "cpu"}, {"log_every", 3}, {"eval_every", 3}}}};
  util::write_file_atomic(dir_ / "run.json", cfg.dump(2));
  std::string out, err;
  ASSERT_EQ(run(quote(binary("bert-train")) + " --config " + p("run.json"), &out, &err), 0) << err;
  // Validation in the loop: the standard scoring (15 %, 80/10/10) and, as training masked 20 %, that too.
  std::map<int64_t, double> logged, logged_own;
  std::istringstream metrics(util::read_file(dir_ / "trained" / "metrics.jsonl"));
  for (std::string line; std::getline(metrics, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.value("type", "") != "valid") continue;
    logged[j["step"].get<int64_t>()] = j["loss"].get<double>();
    logged_own[j["step"].get<int64_t>()] = j["training_masking"]["loss"].get<double>();
  }
  ASSERT_EQ(logged.size(), 2u);

  // max_seq_len 48 and the seed's streams come from the checkpoint's run config; the masking is the
  // standard one unless --checkpoint-masking or the masking flags say otherwise.
  for (const std::string flags : {"", " --checkpoint-masking", " --mask-prob 0.2"}) {
    ASSERT_EQ(eval("--all-checkpoints " + p("trained") + " -d " + p("a.txt") + " --seed 7 --batch-size 8 --json" + flags,
                   &out, &err), 0) << err;
    const bool own = !flags.empty();
    const nlohmann::json j = nlohmann::json::parse(out);
    ASSERT_EQ(j["checkpoints"].size(), 2u);
    for (const auto& c : j["checkpoints"]) {
      const int64_t step = c["step"].get<int64_t>();
      ASSERT_TRUE(logged.count(step)) << step;
      const double want = own ? logged_own[step] : logged[step];
      EXPECT_NEAR(c["overall"]["loss"].get<double>(), want, 1e-5 * want) << "step " << step << flags;
      EXPECT_EQ(c["settings"]["max_seq_len"], 48);
      EXPECT_DOUBLE_EQ(c["settings"]["masking"]["mask_prob"].get<double>(), own ? 0.2 : 0.15) << flags;
    }
  }
  EXPECT_NE(logged[3], logged_own[3]);  // the two scorings differ (so the comparisons above can fail)
  EXPECT_EQ(eval("--checkpoint " + p("trained") + " -d " + p("a.txt") + " --checkpoint-masking --mask-prob 0.3", &out, &err), 2);
  // The cache went next to the checkpoints, not into them.
  EXPECT_TRUE(fs::is_directory(dir_ / "trained" / "cache"));
}

}  // namespace
}  // namespace bert::eval
