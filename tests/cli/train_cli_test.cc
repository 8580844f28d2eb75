// End to end through the real binaries: bert-vocab build -> bert-train (checkpoints, resume,
// signals, NaN guard, bad input) on a slice of the real corpus.
#include <gtest/gtest.h>

#include "cli_test_util.h"
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmath>
#include <algorithm>
#include <vector>
#include <cstring>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <thread>

namespace bert {
namespace {
namespace fs = std::filesystem;

using cli_test::Result;
using cli_test::run;
using cli_test::slurp;

// The bytes of a file that must exist and be non-empty (a missing one fails the test, so two missing
// files never compare equal as "").
std::string slurp_existing(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec) || fs::file_size(p, ec) == 0) {
    ADD_FAILURE() << p << " does not exist or is empty";
    return "<missing " + p.string() + ">";
  }
  return slurp(p);
}

// trainer_state.json without its run_config (which names the run dir and the --stop-after slice).
nlohmann::json trainer_state_of(const fs::path& checkpoint) {
  nlohmann::json j = nlohmann::json::parse(slurp_existing(checkpoint / "trainer_state.json"), nullptr, false);
  if (j.is_object()) j.erase("run_config");
  return j;
}


// The float32 tensors of a safetensors file by name (the format: 8-byte header length, JSON header
// with dtype/shape/data_offsets, then the data).
std::map<std::string, std::vector<float>> read_f32_tensors(const fs::path& p) {
  std::map<std::string, std::vector<float>> out;
  const std::string bytes = slurp_existing(p);
  if (bytes.size() < 8) return out;
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  for (const auto& [name, e] : header.items()) {
    if (name == "__metadata__" || e.at("dtype") != "F32") continue;
    const uint64_t begin = e.at("data_offsets")[0], end = e.at("data_offsets")[1];
    std::vector<float> v((end - begin) / 4);
    std::memcpy(v.data(), bytes.data() + 8 + n + begin, end - begin);
    out[name] = std::move(v);
  }
  return out;
}

// Fails unless every tensor of `b` is within 1e-5 of `a` relative to the tensor's largest value
// (plus 1e-8 absolute: the attention key biases get an exactly-zero gradient, softmax being
// invariant to them, and hold only rounding noise of ~1e-9).
void expect_close_weights(const fs::path& a_file, const fs::path& b_file) {
  const auto a = read_f32_tensors(a_file), b = read_f32_tensors(b_file);
  ASSERT_FALSE(a.empty()) << a_file;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, va] : a) {
    const auto& vb = b.at(name);
    ASSERT_EQ(va.size(), vb.size()) << name;
    float scale = 0, diff = 0;
    for (size_t i = 0; i < va.size(); ++i) {
      scale = std::max(scale, std::abs(va[i]));
      diff = std::max(diff, std::abs(va[i] - vb[i]));
    }
    EXPECT_LE(diff, 1e-5f * scale + 1e-8f) << name << " (largest value " << scale << ")";
  }
}

// The training losses logged in a run's metrics.jsonl, in order.
std::vector<double> train_losses(const fs::path& run_dir) {
  std::vector<double> out;
  std::ifstream in(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "train") out.push_back(j["loss"].get<double>());
  }
  return out;
}

// Environment of rank `rank` of `world` processes rendezvousing on 127.0.0.1:`port` (as torchrun sets it).
std::string rank_env(int rank, int world, int port) {
  return "RANK=" + std::to_string(rank) + " WORLD_SIZE=" + std::to_string(world) + " LOCAL_RANK=" +
         std::to_string(rank) + " LOCAL_WORLD_SIZE=" + std::to_string(world) +
         " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " ";
}

// `cmd` as two ranks in parallel; the exit code is rank 0's if non-zero, else rank 1's.
std::string two_ranks(const std::string& cmd, int port) {
  return "( " + rank_env(0, 2, port) + cmd + " & p=$!; " + rank_env(1, 2, port) + cmd +
         "; c1=$?; wait $p; c0=$?; [ $c0 -ne 0 ] && exit $c0; exit $c1 )";
}

// A checkpoint directory that is complete: its manifest (written last) is there.
bool verify_manifest_exists(const fs::path& checkpoint) { return fs::exists(checkpoint / "manifest.json"); }

// A port per test process (ctest runs test cases in parallel processes).
int test_port(int offset) { return 20000 + static_cast<int>(::getpid() % 20000) + offset; }

// Starts `argv` in the background with stdout and stderr to `log` and `env` added to the
// environment; returns its pid.
pid_t spawn_logged(const fs::path& log, const std::vector<std::string>& argv,
                   const std::vector<std::pair<std::string, std::string>>& env = {}) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// bert-train --config `cfg` in the background, output to `log`.
pid_t start_train(const fs::path& cfg, const fs::path& log) { return spawn_logged(log, {BERT_TRAIN_BIN, "--config", cfg.string()}); }

class TrainCli : public ::testing::Test {
 protected:
  static fs::path root_;

  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("bert_train_cli_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    fs::path corpus = fs::path(BERT_SOURCE_DIR) / "data/corpus/train.txt";
    if (!fs::exists(corpus)) {
      ASSERT_EQ(run("python3 " BERT_SOURCE_DIR "/scripts/make_corpus.py " BERT_SOURCE_DIR "/data/corpus").code, 0);
    }
    // The first ~2,500 lines (Genesis) for training, the next 300 for validation.
    ASSERT_EQ(run("head -n 2500 " + corpus.string() + " > " + (root_ / "train.txt").string()).code, 0);
    ASSERT_EQ(run("sed -n 2501,2800p " + corpus.string() + " > " + (root_ / "valid.txt").string()).code, 0);
    Result v = run(std::string(BERT_VOCAB_BIN) + " build --input " + (root_ / "train.txt").string() +
                   " --output " + (root_ / "vocab").string() + " --vocab-size 1000");
    ASSERT_EQ(v.code, 0) << v.output;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  // Writes a tiny-model config for run dir `name` and returns its path.
  fs::path config(const std::string& name, const nlohmann::json& patch = nlohmann::json::object()) {
    nlohmann::json j = {
        {"model", {{"hidden_size", 32}, {"num_layers", 2}, {"num_heads", 2}, {"intermediate_size", 64},
                   {"max_position_embeddings", 64}}},
        {"data", {{"train_files", {(root_ / "train.txt").string()}}, {"valid_files", {(root_ / "valid.txt").string()}},
                  {"vocab_dir", (root_ / "vocab").string()}, {"max_seq_len", 64}}},
        {"training", {{"batch_size", 8}, {"max_steps", 6}, {"lr", 1e-3}, {"warmup_steps", 2}, {"precision", "fp32"}}},
        {"checkpoint", {{"dir", (root_ / name).string()}, {"every", 3}, {"keep_last", 0}}},
        {"runtime", {{"device", "cpu"}, {"threads", 1}, {"log_every", 1}, {"eval_every", 3}, {"eval_max_batches", 2}}},
    };
    j.merge_patch(patch);
    fs::path p = root_ / (name + ".json");
    std::ofstream(p) << j.dump(2);
    return p;
  }
  static std::string train(const fs::path& cfg, const std::string& extra = "") {
    return std::string(BERT_TRAIN_BIN) + " --config " + cfg.string() + " " + extra;
  }
};
fs::path TrainCli::root_;

TEST_F(TrainCli, TrainsCheckpointsAndLogsMetrics) {
  Result r = run(train(config("basic")));
  ASSERT_EQ(r.code, 0) << r.output;
  fs::path run_dir = root_ / "basic";
  EXPECT_EQ(slurp(run_dir / "latest"), "step-0000006\n");
  for (const char* f : {"model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json",
                        "optimizer.safetensors", "trainer_state.json", "manifest.json"}) {
    EXPECT_TRUE(fs::exists(run_dir / "step-0000006" / f)) << f;
  }
  EXPECT_TRUE(fs::exists(run_dir / "step-0000003"));
  EXPECT_TRUE(fs::exists(run_dir / "run_config.json"));
  std::ifstream metrics(run_dir / "metrics.jsonl");
  std::string line;
  int train_rows = 0, valid_rows = 0;
  double first_loss = 0;
  while (std::getline(metrics, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == "train") {
      if (train_rows++ == 0) first_loss = j["loss"].get<double>();
      EXPECT_GT(j["tokens_per_s"].get<double>(), 0);
    } else {
      ++valid_rows;
      EXPECT_NEAR(j["perplexity"].get<double>(), std::exp(j["loss"].get<double>()), 1e-6);
    }
  }
  EXPECT_EQ(train_rows, 6);
  EXPECT_EQ(valid_rows, 2);
  EXPECT_NEAR(first_loss, std::log(1000.0), 1.0);  // a fresh model is near-uniform over the vocab
}

TEST_F(TrainCli, ResumedRunIsBitIdenticalToUninterrupted) {
  for (const char* precision : {"fp32", "bf16"}) {
    std::string p = precision;
    nlohmann::json patch = {{"training", {{"precision", p}}}, {"checkpoint", {{"every", 100}}}};
    ASSERT_EQ(run(train(config("whole-" + p, patch))).code, 0);
    Result first = run(train(config("sliced-" + p, patch), "--stop-after 2"));
    ASSERT_EQ(first.code, 0) << first.output;
    ASSERT_TRUE(fs::exists(root_ / ("sliced-" + p) / "step-0000002"));
    Result second = run(train(config("sliced-" + p, patch), "--stop-after 3"));
    ASSERT_EQ(second.code, 0) << second.output;
    EXPECT_NE(second.output.find("resumed from"), std::string::npos) << second.output;
    Result third = run(train(config("sliced-" + p, patch)));
    ASSERT_EQ(third.code, 0) << third.output;
    const fs::path whole = root_ / ("whole-" + p) / "step-0000006", sliced = root_ / ("sliced-" + p) / "step-0000006";
    EXPECT_EQ(slurp(root_ / ("whole-" + p) / "latest"), "step-0000006\n");
    EXPECT_EQ(slurp(root_ / ("sliced-" + p) / "latest"), "step-0000006\n");
    EXPECT_EQ(slurp_existing(whole / "model.safetensors"), slurp_existing(sliced / "model.safetensors")) << precision;
    EXPECT_EQ(slurp_existing(whole / "optimizer.safetensors"), slurp_existing(sliced / "optimizer.safetensors"))
        << precision;
    EXPECT_EQ(trainer_state_of(whole), trainer_state_of(sliced)) << precision;
    EXPECT_EQ(trainer_state_of(whole)["loader"]["batch"], 6) << trainer_state_of(whole).dump();
  }
}

TEST_F(TrainCli, SigintFinishesTheStepSavesAndExits130) {
  fs::path cfg = config("sigint", {{"training", {{"max_steps", 100000}}}, {"checkpoint", {{"every", 100000}}}});
  fs::path log = root_ / "sigint.log";
  const pid_t pid = start_train(cfg, log);
  // Wait until training is under way (a metrics row exists), then interrupt.
  fs::path metrics = root_ / "sigint" / "metrics.jsonl";
  for (int i = 0; i < 600 && !(fs::exists(metrics) && fs::file_size(metrics) > 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << slurp(log);
  EXPECT_EQ(WEXITSTATUS(status), 130) << slurp(log);
  std::string latest = slurp(root_ / "sigint" / "latest");
  ASSERT_FALSE(latest.empty()) << slurp(log);
  latest.pop_back();
  EXPECT_TRUE(fs::exists(root_ / "sigint" / latest / "manifest.json"));
  // Rerunning resumes from it (stop right away with a one-step slice).
  Result again = run(train(cfg, "--stop-after 1"));
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("resumed from"), std::string::npos) << again.output;
}

TEST_F(TrainCli, NanGuardStopsAfterConsecutiveBadSteps) {
  // Start from a checkpoint (a Hugging Face dir) whose embedding LayerNorm weights are 1e30, as after
  // a divergence: finite, so the loader takes them (NaN or Inf weights are refused at load; the
  // bad-input catalogue covers that), but every forward overflows, every step's loss is non-finite,
  // so no update may happen and the run must stop.
  ASSERT_EQ(run(train(config("nan-src"))).code, 0);
  fs::path src = root_ / "nan-src" / "step-0000006", poisoned = root_ / "poisoned";
  fs::copy(src, poisoned, fs::copy_options::recursive);
  {
    std::fstream f(poisoned / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    uint64_t header_len = 0;
    f.read(reinterpret_cast<char*>(&header_len), 8);
    std::string header(header_len, ' ');
    f.read(header.data(), static_cast<std::streamsize>(header_len));
    auto entry = nlohmann::json::parse(header)["bert.embeddings.LayerNorm.weight"];
    uint64_t begin = entry["data_offsets"][0], end = entry["data_offsets"][1];
    f.seekp(static_cast<std::streamoff>(8 + header_len + begin));
    const float huge = 1e30f;
    for (uint64_t i = begin; i < end; i += 4) f.write(reinterpret_cast<const char*>(&huge), 4);
  }
  Result r = run(train(config("nan", {{"training", {{"init_from", poisoned.string()}, {"max_bad_steps", 3},
                                                      {"max_steps", 50}}}})));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("training diverged: 3 steps in a row"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("update skipped"), std::string::npos) << r.output;
}


// Data-parallel (issue 14): 2 ranks x batch B equal 1 rank x batch 2B with dropout off.
nlohmann::json data_parallel_patch(int batch) {
  return {{"model", {{"hidden_dropout", 0.0}, {"attention_dropout", 0.0}}},
          {"training", {{"batch_size", batch}, {"max_steps", 20}}},
          {"checkpoint", {{"every", 10}}},
          {"runtime", {{"eval_every", 0}, {"log_every", 5}, {"dist_timeout_s", 60}}}};
}

TEST_F(TrainCli, TwoRanksEqualOneRankWithTheDoubleBatch) {
  ASSERT_EQ(run(train(config("dp-one", data_parallel_patch(16)))).code, 0);
  Result two = run(two_ranks(train(config("dp-two", data_parallel_patch(8))), test_port(1)));
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_NE(two.output.find("data-parallel: 2 processes (torchrun, gloo), global batch 16 = 8 x 2 ranks"),
            std::string::npos) << two.output;
  const auto one_losses = train_losses(root_ / "dp-one"), two_losses = train_losses(root_ / "dp-two");
  ASSERT_EQ(one_losses.size(), 4u);
  ASSERT_EQ(two_losses.size(), 4u);  // rank 0 alone wrote metrics.jsonl
  for (size_t i = 0; i < one_losses.size(); ++i) EXPECT_NEAR(two_losses[i], one_losses[i], 1e-5 * one_losses[i]) << i;
  expect_close_weights(root_ / "dp-one/step-0000020/model.safetensors", root_ / "dp-two/step-0000020/model.safetensors");
  // The same data seen: the same global position and token count.
  const auto a = trainer_state_of(root_ / "dp-one/step-0000020"), b = trainer_state_of(root_ / "dp-two/step-0000020");
  EXPECT_EQ(a["loader"]["batch"], b["loader"]["batch"]);
  EXPECT_EQ(a["tokens_seen"], b["tokens_seen"]);
  EXPECT_EQ(b["loader"]["world_size"], 2);
}

TEST_F(TrainCli, TwoRankRunResumesOnOneRankWithTheSameGlobalBatch) {
  ASSERT_EQ(run(two_ranks(train(config("dpr-whole", data_parallel_patch(8))), test_port(2))).code, 0);
  Result first = run(two_ranks(train(config("dpr-sliced", data_parallel_patch(8)), "--stop-after 10"), test_port(3)));
  ASSERT_EQ(first.code, 0) << first.output;
  ASSERT_TRUE(fs::exists(root_ / "dpr-sliced/step-0000010"));
  Result second = run(train(config("dpr-sliced", data_parallel_patch(16))));  // one rank, batch 2B
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("resumed from"), std::string::npos) << second.output;
  expect_close_weights(root_ / "dpr-whole/step-0000020/model.safetensors",
                       root_ / "dpr-sliced/step-0000020/model.safetensors");
  // Another global batch is refused with the reason.
  Result other = run(train(config("dpr-sliced", data_parallel_patch(4)), "--resume " + (root_ / "dpr-sliced/step-0000010").string()));
  EXPECT_NE(other.code, 0);
  EXPECT_NE(other.output.find("global batch"), std::string::npos) << other.output;
}

TEST_F(TrainCli, DistributedBadInputIsAClearUsageError) {
  const std::string cmd = train(config("dp-bad", data_parallel_patch(8)));
  Result no_master = run("RANK=0 WORLD_SIZE=2 " + cmd);
  EXPECT_EQ(no_master.code, 2) << no_master.output;
  EXPECT_NE(no_master.output.find("MASTER_ADDR and MASTER_PORT"), std::string::npos) << no_master.output;
  Result rank = run("RANK=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1234 " + cmd);
  EXPECT_EQ(rank.code, 2) << rank.output;
  EXPECT_NE(rank.output.find("RANK=2 is not below the world size 2"), std::string::npos) << rank.output;
  Result nccl = run(rank_env(0, 2, test_port(4)) + cmd + " --set runtime.backend=nccl");
  EXPECT_EQ(nccl.code, 2) << nccl.output;
  EXPECT_NE(nccl.output.find("runtime.backend = \"nccl\" needs CUDA"), std::string::npos) << nccl.output;
  // Rank 1 never comes: rank 0 names it after runtime.dist_timeout_s and has written nothing.
  Result alone = run(rank_env(0, 2, test_port(5)) + cmd + " --set runtime.dist_timeout_s=3");
  EXPECT_EQ(alone.code, 1) << alone.output;
  EXPECT_NE(alone.output.find("rank(s) 1 of 2 did not arrive within runtime.dist_timeout_s = 3 s"), std::string::npos)
      << alone.output;
  EXPECT_FALSE(fs::exists(root_ / "dp-bad"));
  // A port in use: rank 0 cannot host the store; exit 2 before anything is written.
  const int busy = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(test_port(12)));
  ASSERT_EQ(::bind(busy, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << "test port taken";
  ASSERT_EQ(::listen(busy, 1), 0);
  Result in_use = run(rank_env(0, 2, test_port(12)) + cmd + " --set runtime.dist_timeout_s=3");
  ::close(busy);
  EXPECT_EQ(in_use.code, 2) << in_use.output;
  EXPECT_NE(in_use.output.find("set MASTER_PORT to a free port"), std::string::npos) << in_use.output;
  EXPECT_FALSE(fs::exists(root_ / "dp-bad"));
  // An epoch smaller than the global batch: every rank stops with exit 2 naming training.batch_size.
  nlohmann::json huge = data_parallel_patch(100000);
  Result small = run(two_ranks(train(config("dp-small", huge)), test_port(13)));
  EXPECT_EQ(small.code, 2) << small.output;
  EXPECT_NE(small.output.find("fewer than one global batch of training.batch_size 100000 x world size 2"),
            std::string::npos) << small.output;
  EXPECT_FALSE(fs::exists(root_ / "dp-small")) << "the failed start left its run dir behind";
}

TEST_F(TrainCli, TorchrunLaunchesTheRanks) {
  const fs::path torchrun = fs::path(std::getenv("BERT_PYTHON") ? std::getenv("BERT_PYTHON") : "").parent_path() / "torchrun";
  if (!fs::exists(torchrun)) GTEST_SKIP() << "no torchrun next to BERT_PYTHON";
  ASSERT_EQ(run(two_ranks(train(config("dpt-manual", data_parallel_patch(8))), test_port(6))).code, 0);
  Result r = run(torchrun.string() + " --nproc-per-node 2 --master-port " + std::to_string(test_port(7)) +
                 " --no-python " + train(config("dpt-torchrun", data_parallel_patch(8))));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(slurp_existing(root_ / "dpt-manual/step-0000020/model.safetensors"),
            slurp_existing(root_ / "dpt-torchrun/step-0000020/model.safetensors"));
}

// Starts rank `rank` of 2 in the background (output to `log`); returns its pid.
pid_t start_rank(int rank, int port, const fs::path& cfg, const fs::path& log) {
  const std::string r = std::to_string(rank);
  return spawn_logged(log, {BERT_TRAIN_BIN, "--config", cfg.string()},
                      {{"RANK", r}, {"LOCAL_RANK", r}, {"WORLD_SIZE", "2"}, {"LOCAL_WORLD_SIZE", "2"},
                       {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(port)}});
}

// Waits for `pid` at most `seconds`; returns its exit code (128 + signal if killed), -1 on a timeout.
int wait_exit(pid_t pid, int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return -1;
}

void wait_for_training(const fs::path& run_dir) {
  const fs::path metrics = run_dir / "metrics.jsonl";
  for (int i = 0; i < 600 && !(fs::exists(metrics) && fs::file_size(metrics) > 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TEST_F(TrainCli, SigtermOnOneRankStopsEveryRankAfterASave) {
  nlohmann::json patch = data_parallel_patch(8);
  patch["training"]["max_steps"] = 100000;
  patch["checkpoint"]["every"] = 100000;
  const fs::path cfg = config("dp-term", patch);
  const int port = test_port(8);
  const pid_t r0 = start_rank(0, port, cfg, root_ / "dp-term-0.log"), r1 = start_rank(1, port, cfg, root_ / "dp-term-1.log");
  wait_for_training(root_ / "dp-term");
  ::kill(r1, SIGTERM);  // the rank that does not write
  EXPECT_EQ(wait_exit(r1, 60), 143) << slurp(root_ / "dp-term-1.log");
  EXPECT_EQ(wait_exit(r0, 60), 143) << slurp(root_ / "dp-term-0.log");
  std::string latest = slurp(root_ / "dp-term" / "latest");
  ASSERT_FALSE(latest.empty()) << slurp(root_ / "dp-term-0.log");
  latest.pop_back();
  EXPECT_EQ(verify_manifest_exists(root_ / "dp-term" / latest), true);
}

TEST_F(TrainCli, AKilledRankMakesTheOtherExitAndKeepsTheCheckpoint) {
  nlohmann::json patch = data_parallel_patch(8);
  patch["training"]["max_steps"] = 100000;
  patch["checkpoint"]["every"] = 5;
  patch["runtime"]["dist_timeout_s"] = 20;
  const fs::path cfg = config("dp-kill", patch);
  const int port = test_port(9);
  const pid_t r0 = start_rank(0, port, cfg, root_ / "dp-kill-0.log"), r1 = start_rank(1, port, cfg, root_ / "dp-kill-1.log");
  wait_for_training(root_ / "dp-kill");
  for (int i = 0; i < 300 && !fs::exists(root_ / "dp-kill" / "latest"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(r1, SIGKILL);
  EXPECT_EQ(wait_exit(r1, 10), 128 + SIGKILL);
  const int code = wait_exit(r0, 30);  // within the timeout, not a hang
  EXPECT_NE(code, 0) << slurp(root_ / "dp-kill-0.log");
  EXPECT_NE(code, -1) << "rank 0 hung after its peer died\n" << slurp(root_ / "dp-kill-0.log");
  std::string latest = slurp(root_ / "dp-kill" / "latest");
  ASSERT_FALSE(latest.empty());
  latest.pop_back();
  EXPECT_TRUE(verify_manifest_exists(root_ / "dp-kill" / latest));
}

// torchrun --max-restarts 1: a worker killed with SIGKILL past a checkpoint; the agent restarts the
// group, which resumes from the newest checkpoint and ends with the weights of an uninterrupted run
// (bit-identical: with 2 ranks the all-reduce sum a + b does not depend on the bucketing).
TEST_F(TrainCli, TorchrunRestartsAKilledGroupFromTheLatestCheckpoint) {
  const fs::path torchrun = fs::path(std::getenv("BERT_PYTHON") ? std::getenv("BERT_PYTHON") : "").parent_path() / "torchrun";
  if (!fs::exists(torchrun)) GTEST_SKIP() << "no torchrun next to BERT_PYTHON";
  nlohmann::json patch = data_parallel_patch(8);
  patch["training"]["max_steps"] = 60;
  patch["checkpoint"]["every"] = 5;
  patch["checkpoint"]["keep_last"] = 0;
  ASSERT_EQ(run(two_ranks(train(config("dpr-straight", patch)), test_port(10))).code, 0);

  const fs::path cfg = config("dpr-restart", patch), log = root_ / "dpr-restart.log";
  const pid_t agent = spawn_logged(log, {torchrun.string(), "--nproc-per-node", "2", "--max-restarts", "1", "--master-port",
                                         std::to_string(test_port(11)), "--no-python", BERT_TRAIN_BIN, "--config", cfg.string()});
  wait_for_training(root_ / "dpr-restart");
  for (int i = 0; i < 300 && !fs::exists(root_ / "dpr-restart" / "latest"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // One of the agent's workers (its children running bert-train).
  Result workers = run("pgrep -P " + std::to_string(agent) + " -f " BERT_TRAIN_BIN);
  ASSERT_EQ(workers.code, 0) << "no worker found\n" << slurp(log);
  const pid_t victim = static_cast<pid_t>(std::stol(workers.output));
  ASSERT_FALSE(fs::exists(root_ / "dpr-restart/step-0000060")) << "the run ended before the kill; slow it down";
  ::kill(victim, SIGKILL);
  const int code = wait_exit(agent, 240);
  const std::string out = slurp(log);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("resumed from"), std::string::npos) << out;
  EXPECT_EQ(slurp_existing(root_ / "dpr-straight/step-0000060/model.safetensors"),
            slurp_existing(root_ / "dpr-restart/step-0000060/model.safetensors"));
  EXPECT_EQ(slurp_existing(root_ / "dpr-straight/step-0000060/optimizer.safetensors"),
            slurp_existing(root_ / "dpr-restart/step-0000060/optimizer.safetensors"));
}

// Ctrl-C mid-run, and SIGKILL after two checkpoints with the newest then damaged: each resumed
// through bert-train ends bit-identical (weights, optimizer, trainer state) to an uninterrupted run;
// the damaged checkpoint is skipped with bert-train's warning.
TEST_F(TrainCli, InterruptedRunsResumeBitIdentical) {
  const nlohmann::json patch = {{"training", {{"max_steps", 300}}}, {"checkpoint", {{"every", 20}}},
                                {"runtime", {{"eval_every", 0}, {"log_every", 10}}}};
  ASSERT_EQ(run(train(config("intr-whole", patch))).code, 0);
  const fs::path whole = root_ / "intr-whole/step-0000300";
  auto start = [&](const std::string& name) {
    return start_train(config(name, patch), root_ / (name + ".log"));
  };
  auto expect_same_as_whole = [&](const std::string& name) {
    const fs::path ckpt = root_ / name / "step-0000300";
    EXPECT_EQ(slurp_existing(whole / "model.safetensors"), slurp_existing(ckpt / "model.safetensors")) << name;
    EXPECT_EQ(slurp_existing(whole / "optimizer.safetensors"), slurp_existing(ckpt / "optimizer.safetensors")) << name;
    EXPECT_EQ(trainer_state_of(whole), trainer_state_of(ckpt)) << name;
  };

  // Ctrl-C once training is under way: the step finishes, a checkpoint is saved, exit 130; rerun.
  const pid_t a = start("intr-sigint");
  wait_for_training(root_ / "intr-sigint");
  ::kill(a, SIGINT);
  ASSERT_EQ(wait_exit(a, 60), 130) << "the run ended before the signal, or did not stop\n" << slurp(root_ / "intr-sigint.log");
  Result resumed = run(train(config("intr-sigint", patch)));
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
  expect_same_as_whole("intr-sigint");

  // SIGKILL once two checkpoints exist; then damage the newest (a truncated model file).
  const pid_t b = start("intr-kill");
  const fs::path dir = root_ / "intr-kill";
  for (int i = 0; i < 600 && !fs::exists(dir / "step-0000040"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(b, SIGKILL);
  ASSERT_EQ(wait_exit(b, 10), 128 + SIGKILL);
  ASSERT_FALSE(fs::exists(dir / "step-0000300")) << "the run ended before the kill";
  std::string newest = slurp(dir / "latest");
  ASSERT_FALSE(newest.empty());
  newest.pop_back();
  fs::resize_file(dir / newest / "model.safetensors", 100);
  Result after_kill = run(train(config("intr-kill", patch)));
  ASSERT_EQ(after_kill.code, 0) << after_kill.output;
  EXPECT_NE(after_kill.output.find("skipping checkpoint " + (dir / newest).string()), std::string::npos) << after_kill.output;
  expect_same_as_whole("intr-kill");
}

// A token cache damaged after it was written (bytes flipped inside the shard, size unchanged) is
// noticed by bert-train (checksum), rebuilt with a warning, and the run goes on to the same weights.
TEST_F(TrainCli, CorruptedTokenCacheIsRebuiltByBertTrain) {
  ASSERT_EQ(run(train(config("cache-a"))).code, 0);
  fs::path shard;
  for (const auto& e : fs::recursive_directory_iterator(root_ / "cache-a" / "cache")) {
    if (e.path().filename() == "shard-00000.bin" && e.path().parent_path().filename().string().rfind("train.txt", 0) == 0) {
      shard = e.path();
    }
  }
  ASSERT_FALSE(shard.empty());
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(shard) / 2));
    f.write("\xff\xff\xff\xff\xff\xff\xff\xff", 8);
  }
  fs::remove_all(root_ / "cache-b");
  fs::create_directories(root_ / "cache-b");
  fs::copy(root_ / "cache-a" / "cache", root_ / "cache-b" / "cache", fs::copy_options::recursive);
  Result r = run(train(config("cache-b")));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("cached token shards for " + (root_ / "train.txt").string() + " are damaged, rebuilding them"),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("payload checksum mismatch"), std::string::npos) << r.output;
  EXPECT_EQ(slurp_existing(root_ / "cache-a/step-0000006/model.safetensors"),
            slurp_existing(root_ / "cache-b/step-0000006/model.safetensors"));
}

// The two crash points of a save, left on disk as a crash leaves them: between the two renames of a
// re-save (the old checkpoint moved aside as .old-PID, the new one not yet in place) and before the
// first (an incomplete .tmp-PID dir). bert-train restores the first, removes the second, and resumes.
TEST_F(TrainCli, ACrashInsideASaveLeavesAResumableRun) {
  ASSERT_EQ(run(train(config("midsave", {{"training", {{"max_steps", 6}}}}))).code, 0);
  const fs::path dir = root_ / "midsave";
  const std::string model_bytes = slurp_existing(dir / "step-0000006/model.safetensors");
  fs::rename(dir / "step-0000006", dir / "step-0000006.old-4242");
  fs::create_directories(dir / "step-0000009.tmp-4243");
  std::ofstream(dir / "step-0000009.tmp-4243" / "model.safetensors") << "half a file";
  Result r = run(train(config("midsave", {{"training", {{"max_steps", 9}}}})));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("restored " + (dir / "step-0000006").string() + " from an interrupted save"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("removed the incomplete checkpoint " + (dir / "step-0000009.tmp-4243").string()),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resumed from " + (dir / "step-0000006").string()), std::string::npos) << r.output;
  EXPECT_EQ(slurp_existing(dir / "step-0000006/model.safetensors"), model_bytes);
  EXPECT_TRUE(verify_manifest_exists(dir / "step-0000009"));
  EXPECT_FALSE(fs::exists(dir / "step-0000009.tmp-4243"));
  EXPECT_FALSE(fs::exists(dir / "step-0000006.old-4242"));
}

// A second Ctrl-C while the first is still finishing its step: bert-train stops at once (killed by
// the signal, not exit 130 after a save). Steps here take about half a second, so the second signal,
// 20 ms after the first, lands inside the step the first one lets finish.
TEST_F(TrainCli, ASecondSignalStopsAtOnce) {
  const fs::path cfg = config("sigint2", {{"model", {{"hidden_size", 256}, {"num_layers", 4}, {"num_heads", 4},
                                                     {"intermediate_size", 1024}}},
                                          {"training", {{"max_steps", 100000}, {"batch_size", 128}}},
                                          {"checkpoint", {{"every", 100000}}}, {"runtime", {{"eval_every", 0}}}});
  const fs::path log = root_ / "sigint2.log";
  const pid_t pid = start_train(cfg, log);
  wait_for_training(root_ / "sigint2");
  ::kill(pid, SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT)
      << "exited " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << "\n" << slurp(log);
  EXPECT_FALSE(fs::exists(root_ / "sigint2" / "latest")) << "a checkpoint was saved after the second signal";
}

// The same config started twice: the second bert-train refuses at once (exit 2) naming the first,
// writes nothing into its run dir, and the first goes on and stops cleanly.
TEST_F(TrainCli, ASecondTrainerOnTheSameRunDirIsRefused) {
  const fs::path cfg = config("twice", {{"training", {{"max_steps", 100000}}}, {"checkpoint", {{"every", 100000}}}});
  const fs::path log = root_ / "twice.log";
  const pid_t first = start_train(cfg, log);
  wait_for_training(root_ / "twice");
  const std::string train_log_before = slurp(root_ / "twice" / "train.log");
  Result second = run(train(cfg));
  EXPECT_EQ(second.code, 2) << second.output;
  EXPECT_NE(second.output.find((root_ / "twice").string() + " is in use by another process (bert-train pid " +
                               std::to_string(first) + " on "),
            std::string::npos) << second.output;
  const std::string train_log_after = slurp(root_ / "twice" / "train.log");
  EXPECT_EQ(train_log_after.find("in use by another process"), std::string::npos) << "the refusal went into the first run's log";
  EXPECT_GE(train_log_after.size(), train_log_before.size());
  ::kill(first, SIGINT);
  EXPECT_EQ(wait_exit(first, 60), 130) << slurp(log);
  // Once the first has stopped, the dir is free again: a rerun resumes.
  Result again = run(train(cfg, "--stop-after 1"));
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("resumed from"), std::string::npos) << again.output;
}

// Issue 12: bert-eval reading a run while bert-train writes it (checkpoints every step, kept 2,
// saves stretched by the test-only delay) sees only complete checkpoints: every evaluation either
// succeeds on a verified checkpoint or, before the first save, says there is none; none fails on a
// half-written, pruned or renamed one.
TEST_F(TrainCli, BertEvalReadingARunWhileItTrainsSeesOnlyCompleteCheckpoints) {
  const fs::path cfg = config("watched", {{"training", {{"max_steps", 40}}}, {"checkpoint", {{"every", 1}, {"keep_last", 2}}}});
  const fs::path log = root_ / "watched.log";
  const pid_t trainer = spawn_logged(log, {BERT_TRAIN_BIN, "--config", cfg.string()}, {{"BERT_TEST_SAVE_DELAY_MS", "15"}});
  int evaluated = 0, none_yet = 0, status = 0;
  pid_t done = 0;
  for (int i = 0; i < 200 && (done = ::waitpid(trainer, &status, WNOHANG)) == 0; ++i) {
    Result r = run(std::string(BERT_EVAL_BIN) + " --checkpoint " + (root_ / "watched").string() + " --data " +
                   (root_ / "valid.txt").string() + " --max-batches 1 --json --threads 1");
    if (r.code == 0) {
      ++evaluated;
      EXPECT_NE(r.output.find("\"overall\""), std::string::npos) << r.output;
    } else if (r.output.find("no valid checkpoint") != std::string::npos ||
               r.output.find("watched does not exist") != std::string::npos ||
               r.output.find("watched holds no model") != std::string::npos) {  // before the first save
      EXPECT_EQ(evaluated, 0) << "a run with checkpoints was reported empty:\n" << r.output;
      ++none_yet;
    } else {
      ADD_FAILURE() << "bert-eval failed on a run being written (exit " << r.code << "):\n" << r.output;
    }
  }
  if (done == 0) done = ::waitpid(trainer, &status, 0);
  EXPECT_TRUE(done == trainer && WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(log);
  EXPECT_GE(evaluated, 3) << "too few evaluations overlapped the training";
  RecordProperty("evaluations", evaluated);
  RecordProperty("before_the_first_checkpoint", none_yet);
}

TEST_F(TrainCli, BadInputGetsClearMessagesAndExitCodes) {
  struct Case {
    std::string what, args;
    int code;
    std::string expect;
  };
  fs::path bad_json = root_ / "bad.json";
  std::ofstream(bad_json) << "{\n  \"data\": {,}\n}\n";
  std::vector<Case> cases = {
      {"missing config", "--config /nonexistent.json", 2, "does not exist"},
      {"invalid json", "--config " + bad_json.string(), 2, bad_json.string() + ":2:12: invalid JSON"},
      {"wrong type", "--config " + config("w", {{"training", {{"lr", "fast"}}}}).string(), 2, "training.lr"},
      {"unknown key", "--config " + config("k", {{"training", {{"lrate", 1}}}}).string(), 2, "did you mean \"lr\""},
      {"heads", "--config " + config("h", {{"model", {{"num_heads", 3}}}}).string(), 2, "not divisible"},
      {"seq len", "--config " + config("s", {{"data", {{"max_seq_len", 128}}}}).string(), 2, "max_position_embeddings"},
      {"vocab mismatch", "--config " + config("v", {{"model", {{"vocab_size", 999}}}}).string(), 2, "vocab_size 999"},
      {"no gpu", "--config " + config("g").string() + " --device cuda", 2, "no CUDA GPU"},
      {"missing corpus", "--config " + config("c", {{"data", {{"train_files", {"/nonexistent.txt"}}}}}).string(), 2,
       "/nonexistent.txt does not exist"},
      {"unwritable run dir", "--config " + config("u", {{"checkpoint", {{"dir", "/proc/version/run"}}}}).string(), 1,
       "set checkpoint.dir to a writable location"},
      {"vocab dir is a text file",
       "--config " + config("t", {{"data", {{"vocab_dir", (root_ / "train.txt").string()}}}}).string(), 1,
       "data.vocab_dir"},
      {"dump without output", "--config " + config("d").string() + " --dump-batches 1", 2, "--output"},
  };
  for (const auto& c : cases) {
    // The GPU is hidden, so "no gpu" holds on a machine that has one too.
    Result r = run("CUDA_VISIBLE_DEVICES= " + std::string(BERT_TRAIN_BIN) + " " + c.args);
    EXPECT_EQ(r.code, c.code) << c.what << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.what << "\n" << r.output;
  }
}

TEST_F(TrainCli, RewindingSetsLaterCheckpointsAsideAndAutoResumeFollowsLatest) {
  fs::path cfg = config("rewind", {{"checkpoint", {{"every", 2}}}});
  ASSERT_EQ(run(train(cfg)).code, 0);  // step-2, -4, -6
  fs::create_directories(root_ / "rewind" / "step-0000009.tmp-999999");  // a save killed long ago
  // Go back to step 2 and run 1 step from there.
  Result r = run(train(cfg, "--resume " + (root_ / "rewind" / "step-0000002").string() + " --stop-after 1"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_FALSE(fs::exists(root_ / "rewind" / "step-0000009.tmp-999999"));
  EXPECT_TRUE(fs::exists(root_ / "rewind" / "abandoned-step-0000004"));
  EXPECT_TRUE(fs::exists(root_ / "rewind" / "abandoned-step-0000006"));
  EXPECT_EQ(slurp(root_ / "rewind" / "latest"), "step-0000003\n");
  // metrics.jsonl no longer holds the abandoned steps 3..6 twice.
  std::ifstream metrics(root_ / "rewind" / "metrics.jsonl");
  std::map<std::pair<std::string, int64_t>, int> seen;
  for (std::string line; std::getline(metrics, line);) {
    auto j = nlohmann::json::parse(line);
    const std::pair<std::string, int64_t> key{j["type"].get<std::string>(), j["step"].get<int64_t>()};
    EXPECT_EQ(++seen[key], 1) << line;
  }
  // The default (auto) resumes from what `latest` names, not from the highest step number.
  Result again = run(train(cfg, "--stop-after 1"));
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("step-0000003 at step 3"), std::string::npos) << again.output;
}

// TensorBoard reads back (tensorboard's own readers, the oracle) exactly what metrics.jsonl holds:
// every number of every row as "<type>/<key>" at its step, once, after a run that was cut off after
// its step-5 save and resumed from its step-3 checkpoint with another learning rate (the abandoned
// steps 4-5 must not show), both in TensorBoard's view and in the files themselves.
TEST_F(TrainCli, TensorBoardShowsWhatMetricsJsonlHoldsAcrossARewind) {
  const char* py = std::getenv("BERT_PYTHON");
  ASSERT_TRUE(py != nullptr && *py != '\0') << "BERT_PYTHON is not set: the tensorboard oracle is required";
  const fs::path run_dir = root_ / "tb";
  fs::path cfg = config("tb", {{"training", {{"max_steps", 5}}}, {"runtime", {{"eval_every", 2}}}});
  ASSERT_EQ(run(train(cfg)).code, 0);  // saves at 3 and 5; validations at 2, 4 and 5
  fs::path resumed = config("tb", {{"training", {{"max_steps", 7}, {"lr", 5e-4}}}, {"runtime", {{"eval_every", 2}}}});
  Result r = run(train(resumed, "--resume " + (run_dir / "step-0000003").string()));
  ASSERT_EQ(r.code, 0) << r.output;

  // metrics.jsonl -> the scalars TensorBoard must show, tag -> [[step, value], ...] in step order.
  std::map<std::string, std::vector<std::pair<int64_t, double>>> want;
  std::ifstream metrics(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    const auto j = nlohmann::json::parse(line);
    const std::string type = j["type"];
    for (const auto& [key, value] : j.items()) {
      if (key != "step" && value.is_number()) want[type + "/" + key].emplace_back(j["step"].get<int64_t>(), value.get<double>());
    }
  }
  ASSERT_TRUE(want.count("train/loss") && want.count("valid/accuracy") && want.count("train/lr"));
  EXPECT_EQ(want["train/loss"].size(), 7u);  // steps 1..7 once each (log_every 1)

  auto tensorboard_reads = [&](const std::string& flags) {
    Result read = run(std::string(py) + " " BERT_SOURCE_DIR "/tests/oracle/read_tensorboard.py " +
                      (run_dir / "tensorboard").string() + " " + flags + " 2>/dev/null");
    EXPECT_EQ(read.code, 0) << read.output;
    return read.code == 0 ? nlohmann::json::parse(read.output) : nlohmann::json::object();
  };
  // With TensorBoard's purge of orphaned data, and raw (the files themselves hold no point of the
  // abandoned branch); the resumed run's file starts with a SessionLog START at step 4.
  const nlohmann::json raw = tensorboard_reads("--no-purge");
  EXPECT_EQ(raw["session_starts"], nlohmann::json::parse("[[0, 1], [1, 4]]")) << raw.dump();
  for (const nlohmann::json& view : {tensorboard_reads(""), raw}) {
    const nlohmann::json& tb = view["scalars"];
    for (const auto& [tag, points] : want) {
      ASSERT_TRUE(tb.contains(tag)) << tag << " missing from TensorBoard's view: " << tb.dump();
      ASSERT_EQ(tb[tag].size(), points.size()) << tag << ": " << tb[tag].dump();
      for (size_t i = 0; i < points.size(); ++i) {
        EXPECT_EQ(tb[tag][i][0].get<int64_t>(), points[i].first) << tag;
        EXPECT_FLOAT_EQ(tb[tag][i][1].get<float>(), static_cast<float>(points[i].second))
            << tag << " at step " << points[i].first;
      }
    }
    // The second branch's rate shows at steps 4..7 (warmup 2, then linear decay to step 7).
    EXPECT_FLOAT_EQ(tb["train/lr"][3][1].get<float>(), static_cast<float>(5e-4 * (7 - 3) / 5.0)) << tb["train/lr"].dump();
  }
}

TEST_F(TrainCli, TensorBoardCanBeSwitchedOff) {
  fs::path off = config("tb-off", {{"runtime", {{"tensorboard", false}}}});
  ASSERT_EQ(run(train(off)).code, 0);
  EXPECT_TRUE(fs::exists(root_ / "tb-off" / "metrics.jsonl"));
  EXPECT_FALSE(fs::exists(root_ / "tb-off" / "tensorboard"));
  EXPECT_TRUE(fs::exists(root_ / "tb-off" / "step-0000006"));
}

TEST_F(TrainCli, BadFlagsAndResumeValuesAreUsageErrors) {
  EXPECT_EQ(run(std::string(BERT_TRAIN_BIN) + " --bogus").code, 2);
  EXPECT_EQ(run(std::string(BERT_TRAIN_BIN)).code, 2);
  EXPECT_EQ(run(train(config("flags"), "--stop-after -1")).code, 2);
  Result r = run(train(config("flags"), "--resume /nonexistent/step-1"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("checkpoint.resume"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(root_ / "flags" / "run_config.json"));  // a failed start writes no config
}

TEST_F(TrainCli, DumpBatchesShowsWhatTheModelSees) {
  fs::path out = root_ / "batches.jsonl";
  Result r = run(train(config("dump"), "--dump-batches 2 --output " + out.string()));
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream in(out);
  std::string line;
  int rows = 0, predicted = 0, masked = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    ++rows;
    EXPECT_EQ(j["tokens"][0], "[CLS]");
    for (size_t i = 0; i < j["labels"].size(); ++i) {
      if (j["labels"][i] != -100) {
        ++predicted;
        if (j["tokens"][i] == "[MASK]") ++masked;
      }
    }
  }
  EXPECT_EQ(rows, 16);  // 2 batches x 8 sequences
  EXPECT_GT(predicted, 0);
  EXPECT_GT(masked, predicted / 2);  // ~80% of predictions are [MASK]
}


// The rows of a run's metrics.jsonl of one type.
std::vector<nlohmann::json> metric_rows(const fs::path& run_dir, const std::string& type) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == type) out.push_back(j);
  }
  return out;
}

TEST_F(TrainCli, TrainingSeedDrawsTheInitialWeights) {
  // One step at lr 1e-9 leaves the weights at their initial values (an update moves each by ~1e-9):
  // training.seed must change them, and the same seed must repeat them bit for bit.
  auto weights_of = [&](const std::string& name, int seed) {
    nlohmann::json patch = {{"training", {{"seed", seed}, {"max_steps", 1}, {"lr", 1e-9}, {"warmup_steps", 0}}},
                            {"checkpoint", {{"every", 1}}}, {"runtime", {{"eval_every", 0}}}};
    Result r = run(train(config(name, patch)));
    EXPECT_EQ(r.code, 0) << r.output;
    return read_f32_tensors(root_ / name / "step-0000001" / "model.safetensors");
  };
  const auto a = weights_of("seed-a", 1), b = weights_of("seed-b", 2), again = weights_of("seed-a2", 1);
  const std::string word = "bert.embeddings.word_embeddings.weight";
  ASSERT_TRUE(a.count(word) && b.count(word) && again.count(word));
  EXPECT_EQ(a.at(word), again.at(word)) << "the same training.seed drew different initial weights";
  const auto& wa = a.at(word);
  const auto& wb = b.at(word);
  float largest_diff = 0;
  double sum_sq = 0;
  for (size_t i = 0; i < wa.size(); ++i) {
    largest_diff = std::max(largest_diff, std::abs(wa[i] - wb[i]));
    sum_sq += static_cast<double>(wa[i]) * wa[i];
  }
  EXPECT_GT(largest_diff, 0.02f) << "training.seed 1 and 2 started from the same weights";
  // Closed form: the draws are N(0, initializer_range = 0.02) (the [PAD] row is zero).
  EXPECT_NEAR(std::sqrt(sum_sq / static_cast<double>(wa.size())), 0.02, 0.002);
}

TEST_F(TrainCli, TimeBudgetFixesTheStepsOnceAndTheRunIsThatFixedStepRun) {
  // A 4 s budget: the probe fixes max_steps; the schedule ends there; the run ends within the budget.
  nlohmann::json budget = {{"training", {{"time_budget", "4s"}, {"max_steps", nullptr}}},
                           {"checkpoint", {{"every", 1000000}}}, {"runtime", {{"log_every", 1000000}, {"eval_every", 0}}}};
  const auto t0 = std::chrono::steady_clock::now();
  Result r = run(train(config("budget", budget)));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("steps fit in the"), std::string::npos) << r.output;
  EXPECT_LT(wall, 4.0 + 3.0) << r.output;  // process start-up and exit beyond the budget's own clock
  const fs::path run_dir = root_ / "budget";
  const std::string latest = slurp(run_dir / "latest");
  ASSERT_FALSE(latest.empty());
  const nlohmann::json state = trainer_state_of(run_dir / latest.substr(0, latest.size() - 1));
  const int64_t steps = state["budget"]["max_steps"].get<int64_t>();
  EXPECT_GT(steps, 20) << state.dump();  // a tiny model does far more than 20 steps in 4 s
  EXPECT_LE(state["budget"]["used_s"].get<double>(), 4.0) << state.dump();
  EXPECT_EQ(latest, "step-" + std::string(7 - std::to_string(steps).size(), '0') + std::to_string(steps) + "\n");
  // The last logged lr is the schedule's end (linear decay to 0 at max_steps), not a cut-off mid-way.
  const auto rows = metric_rows(run_dir, "train");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back()["step"], steps);
  EXPECT_NEAR(rows.back()["lr"].get<double>(), 1e-3 / static_cast<double>(steps - 2), 1e-9);
  // The probe's steps were undone: the same config with that max_steps and no budget is the same run.
  nlohmann::json fixed = budget;
  fixed["training"] = {{"time_budget", 0}, {"max_steps", steps}};
  ASSERT_EQ(run(train(config("budget-fixed", fixed))).code, 0);
  const std::string name = latest.substr(0, latest.size() - 1);
  EXPECT_TRUE(slurp_existing(run_dir / name / "model.safetensors") ==
              slurp_existing(root_ / "budget-fixed" / name / "model.safetensors"))
      << "the budgeted run's weights differ from the fixed-step run's";
  // Partner: a different step count is a different model (the comparison can fail).
  fixed["training"]["max_steps"] = steps - 1;
  ASSERT_EQ(run(train(config("budget-other", fixed))).code, 0);
  EXPECT_NE(slurp_existing(root_ / "budget-other" / "latest"), latest);
}

TEST_F(TrainCli, ABudgetedRunResumesWithTheStepsItsProbeFixed) {
  // A budget far above what 40 steps take, so both invocations' set-up fit in it; the cap fixes the steps.
  nlohmann::json budget = {{"training", {{"time_budget", "60s"}, {"max_steps", 40}}},
                           {"checkpoint", {{"every", 1000000}}}, {"runtime", {{"log_every", 1000000}, {"eval_every", 0}}}};
  Result first = run(train(config("budget-sliced", budget), "--stop-after 5"));
  ASSERT_EQ(first.code, 0) << first.output;
  const nlohmann::json at5 = trainer_state_of(root_ / "budget-sliced" / "step-0000005");
  const int64_t steps = at5["budget"]["max_steps"].get<int64_t>();
  ASSERT_EQ(steps, 40);
  Result second = run(train(config("budget-sliced", budget)));
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("keeps the " + std::to_string(steps) + " steps its probe fixed"), std::string::npos)
      << second.output;
  EXPECT_EQ(second.output.find("the probe measured"), std::string::npos) << second.output;  // no second probe
  nlohmann::json fixed = budget;
  fixed["training"] = {{"time_budget", 0}, {"max_steps", steps}};
  ASSERT_EQ(run(train(config("budget-sliced-fixed", fixed))).code, 0);
  const std::string name = slurp(root_ / "budget-sliced-fixed" / "latest");
  ASSERT_EQ(slurp(root_ / "budget-sliced" / "latest"), name);
  EXPECT_TRUE(slurp_existing(root_ / "budget-sliced" / name.substr(0, name.size() - 1) / "model.safetensors") ==
              slurp_existing(root_ / "budget-sliced-fixed" / name.substr(0, name.size() - 1) / "model.safetensors"))
      << "the resumed budgeted run's weights differ from the fixed-step run's";
  // A checkpoint of a run without a budget cannot continue as a budgeted one.
  Result mixed = run(train(config("budget-sliced-fixed", budget)));
  EXPECT_EQ(mixed.code, 2) << mixed.output;
  EXPECT_NE(mixed.output.find("without one"), std::string::npos) << mixed.output;
}

TEST_F(TrainCli, TargetAccuracyStopsAtTheFirstValidationThatReachesIt) {
  // Any accuracy reaches 1e-9: the run stops at the first validation (step 3 of 6) with a checkpoint.
  Result r = run(train(config("target", {{"training", {{"target_accuracy", 1e-9}}}})));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("reached validation accuracy"), std::string::npos) << r.output;
  EXPECT_EQ(slurp(root_ / "target" / "latest"), "step-0000003\n");
  const auto rows = metric_rows(root_ / "target", "target");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["step"], 3);
  EXPECT_EQ(rows[0]["accuracy"], metric_rows(root_ / "target", "valid").back()["accuracy"]);
  // Partner: an unreachable target runs to max_steps.
  Result all = run(train(config("target-high", {{"training", {{"target_accuracy", 0.999}}}})));
  ASSERT_EQ(all.code, 0) << all.output;
  EXPECT_EQ(all.output.find("reached validation accuracy"), std::string::npos) << all.output;
  EXPECT_EQ(slurp(root_ / "target-high" / "latest"), "step-0000006\n");
}

TEST_F(TrainCli, ValidationIsScoredAtFifteenPercentWhateverTheTrainingMasking) {
  Result r = run(train(config("masking50", {{"masking", {{"mask_prob", 0.5}}}})));
  ASSERT_EQ(r.code, 0) << r.output;
  Result s = run(train(config("masking15")));
  ASSERT_EQ(s.code, 0) << s.output;
  const auto v50 = metric_rows(root_ / "masking50", "valid"), v15 = metric_rows(root_ / "masking15", "valid");
  ASSERT_EQ(v50.size(), 2u);
  ASSERT_EQ(v15.size(), 2u);
  // The same validation batches and masks: the same count of predictions, ~15 % of the tokens.
  EXPECT_EQ(v50[0]["predictions"], v15[0]["predictions"]);
  const double share = v15[0]["predictions"].get<double>() / v15[0]["tokens"].get<double>();
  EXPECT_GT(share, 0.10);
  EXPECT_LT(share, 0.20);
  // The training masking is scored too, where it differs: ~50 % of the tokens.
  ASSERT_TRUE(v50[0].contains("training_masking")) << v50[0].dump();
  EXPECT_FALSE(v15[0].contains("training_masking")) << v15[0].dump();
  const double own = v50[0]["training_masking"]["predictions"].get<double>() / v50[0]["tokens"].get<double>();
  EXPECT_GT(own, 0.4);
  EXPECT_LT(own, 0.6);
}

}  // namespace
}  // namespace bert
