// Checkpoints: atomic save, manifest verification, fallback past a damaged one, pruning, reload.
#include "train/checkpoint.h"

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <fstream>

#include "util/atomic_file.h"
#include "util/error.h"

namespace bert::train {
namespace {
namespace fs = std::filesystem;

model::BertConfig tiny_config() {
  model::BertConfig c;
  c.vocab_size = 16;
  c.hidden_size = 8;
  c.num_layers = 1;
  c.num_heads = 2;
  c.intermediate_size = 16;
  c.max_position_embeddings = 16;
  return c;
}

wordpiece::Vocab tiny_vocab() {
  std::vector<std::string> t = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (int i = 0; t.size() < 16; ++i) t.push_back("w" + std::to_string(i));
  return wordpiece::Vocab(t, {});
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    run_dir_ = fs::temp_directory_path() / ("bert_ckpt_test_" + std::to_string(::getpid()));
    fs::remove_all(run_dir_);
    fs::create_directories(run_dir_);
  }
  void TearDown() override { fs::remove_all(run_dir_); }
  fs::path save_at(int64_t step, model::BertForPreTraining& m) {
    CheckpointContents c;
    c.step = step;
    c.trainer_state = {{"loader", {{"epoch", 0}, {"index", step}}}};
    c.optimizer_state = {{"x.exp_avg", torch::full({2}, static_cast<float>(step))}};
    return save_checkpoint(run_dir_, m, tiny_vocab(), c);
  }
  fs::path run_dir_;
};

TEST_F(CheckpointTest, SaveVerifyReload) {
  model::BertForPreTraining m(tiny_config(), /*init_seed=*/1);
  fs::path dir = save_at(5, m);
  EXPECT_EQ(dir.filename(), "step-0000005");
  EXPECT_EQ(run::verify_checkpoint(dir), "");
  for (const char* f : {"model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json",
                        "optimizer.safetensors", "trainer_state.json", "manifest.json"}) {
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  }
  // A model with other weights (another init seed), so the comparison below proves the load.
  model::BertForPreTraining other(tiny_config(), /*init_seed=*/2);
  ASSERT_FALSE(torch::equal(m->named_parameters()["bert.embeddings.word_embeddings.weight"],
                            other->named_parameters()["bert.embeddings.word_embeddings.weight"]));
  CheckpointContents c = load_checkpoint(dir, other);
  EXPECT_EQ(c.step, 5);
  EXPECT_EQ(c.trainer_state["loader"]["index"], 5);
  EXPECT_FLOAT_EQ(c.optimizer_state.at("x.exp_avg")[1].item<float>(), 5.0f);
  auto a = m->named_parameters(), b = other->named_parameters();
  for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
}

TEST_F(CheckpointTest, DamagedCheckpointIsSkippedForThePreviousOne) {
  model::BertForPreTraining m(tiny_config());
  fs::path first = save_at(10, m);
  fs::path second = save_at(20, m);
  ASSERT_EQ(run::find_latest_checkpoint(run_dir_).value(), second);
  {  // flip a byte inside the weights: same size, different crc
    std::fstream f(second / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
  }
  EXPECT_NE(run::verify_checkpoint(second).find("crc32"), std::string::npos);
  EXPECT_EQ(run::find_latest_checkpoint(run_dir_).value(), first);
  fs::resize_file(first / "optimizer.safetensors", 10);  // truncated
  EXPECT_NE(run::verify_checkpoint(first).find("truncated"), std::string::npos);
  EXPECT_FALSE(run::find_latest_checkpoint(run_dir_).has_value());
}

TEST_F(CheckpointTest, IncompleteTempDirIsIgnoredAndPruningKeepsNewest) {
  model::BertForPreTraining m(tiny_config());
  for (int s : {1, 2, 3, 4}) save_at(s, m);
  fs::create_directories(run_dir_ / "step-0000009.tmp-123");  // a crash mid-save
  EXPECT_EQ(run::find_latest_checkpoint(run_dir_).value().filename(), "step-0000004");
  run::prune_checkpoints(run_dir_, 2);
  EXPECT_FALSE(fs::exists(run_dir_ / "step-0000001"));
  EXPECT_FALSE(fs::exists(run_dir_ / "step-0000002"));
  EXPECT_TRUE(fs::exists(run_dir_ / "step-0000003"));
  EXPECT_TRUE(fs::exists(run_dir_ / "step-0000004"));
}

TEST_F(CheckpointTest, DiskFullKeepsThePreviousCheckpoint) {
  model::BertForPreTraining m(tiny_config());
  fs::path first = save_at(1, m);
  // Simulate a full disk: writes past 2 KB fail with EFBIG (SIGXFSZ ignored).
  struct rlimit old {};
  ::getrlimit(RLIMIT_FSIZE, &old);
  auto prev_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tight = old;
  tight.rlim_cur = 2048;
  ::setrlimit(RLIMIT_FSIZE, &tight);
  bool threw = false;
  try {
    save_at(2, m);
  } catch (const util::Error& e) {
    threw = true;
    EXPECT_EQ(e.kind(), util::ErrorKind::kIo);
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, prev_handler);
  EXPECT_TRUE(threw);
  EXPECT_FALSE(fs::exists(run_dir_ / "step-0000002"));
  for (const auto& e : fs::directory_iterator(run_dir_)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
  EXPECT_EQ(run::verify_checkpoint(first), "");
  EXPECT_EQ(run::find_latest_checkpoint(run_dir_).value(), first);
}

// A manifest from elsewhere is data, not code: every malformation is a reason, never an exception.
TEST_F(CheckpointTest, MalformedManifestsAreReasonsNotExceptions) {
  model::BertForPreTraining m(tiny_config(), /*init_seed=*/1);
  const fs::path dir = save_at(3, m);
  const std::string good = util::read_file(dir / "manifest.json");
  struct Case { std::string manifest, reason; };
  for (const Case& c : {
           Case{"[1,2]", "no file list"},
           Case{"{\"files\": 7}", "no file list"},
           Case{"{\"files\": {\"model.safetensors\": 5}}", "lists no config.json"},
           Case{"not json", "manifest.json"},
       }) {
    util::write_file_atomic(dir / "manifest.json", c.manifest);
    std::string why;
    ASSERT_NO_THROW(why = run::verify_checkpoint(dir)) << c.manifest;
    EXPECT_NE(why.find(c.reason), std::string::npos) << c.manifest << " -> " << why;
  }
  nlohmann::json j = nlohmann::json::parse(good);
  j["files"]["config.json"]["size"] = "12";
  util::write_file_atomic(dir / "manifest.json", j.dump());
  EXPECT_NE(run::verify_checkpoint(dir).find("needs a non-negative integer size and crc32"), std::string::npos);
  j = nlohmann::json::parse(good);
  j["files"]["../escape"] = {{"size", 0}, {"crc32", 0}};
  util::write_file_atomic(dir / "manifest.json", j.dump());
  EXPECT_NE(run::verify_checkpoint(dir).find("not a file name"), std::string::npos);
  util::write_file_atomic(dir / "manifest.json", good);
  EXPECT_EQ(run::verify_checkpoint(dir), "");
}

TEST_F(CheckpointTest, TrainerStateFromANewerFormatOrWithBadFieldsIsRefusedNamingTheFile) {
  model::BertForPreTraining m(tiny_config(), /*init_seed=*/1);
  const fs::path dir = save_at(4, m);
  int64_t step = -1;
  EXPECT_NO_THROW(run::read_trainer_state(dir, &step));
  EXPECT_EQ(step, 4);
  struct Case { std::string state, fragment; };
  for (const Case& c : {
           Case{"{\"format_version\": 2, \"step\": 4}", "written by a newer bert-train"},
           Case{"{\"format_version\": 0, \"step\": 4}", "unsupported checkpoint format version 0"},
           Case{"{\"step\": 4}", "\"format_version\" is missing"},
           Case{"{\"format_version\": 1, \"step\": -3}", "\"step\" must be an integer >= 0"},
           Case{"{\"format_version\": 1, \"step\": \"4\"}", "\"step\" must be an integer >= 0"},
           Case{"{\"format_version\": 1, \"step\": 4, \"tokens_seen\": 1.5}", "\"tokens_seen\" must be"},
           Case{"[]", "expected a JSON object"},
       }) {
    util::write_file_atomic(dir / "trainer_state.json", c.state);
    try {
      run::read_trainer_state(dir, &step);
      ADD_FAILURE() << c.state << " was accepted";
    } catch (const util::Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.fragment), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("trainer_state.json"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace bert::train
