// Run-config parsing: defaults, strictness (unknown keys, types, ranges), overrides, error positions.
#include "run/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <vector>

#include "util/error.h"

namespace bert::run {
namespace {

nlohmann::json minimal() {
  return {{"data", {{"train_files", {"a.txt"}}, {"vocab_dir", "vocab"}}}};
}

std::string error_of(const nlohmann::json& j) {
  try {
    parse_run_config(j, "run.json");
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kUsage);
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsFillEverySection) {
  RunConfig c = parse_run_config(minimal(), "run.json");
  EXPECT_EQ(c.model.hidden_size, 256);
  EXPECT_EQ(c.data.max_seq_len, 128);
  EXPECT_DOUBLE_EQ(c.masking.mask_prob, 0.15);
  EXPECT_EQ(c.training.precision, "auto");
  EXPECT_EQ(c.checkpoint.resume, "auto");
  EXPECT_EQ(c.data.cache_dir, std::filesystem::path("runs/run/cache"));
  // The resolved JSON parses back to the same config.
  RunConfig again = parse_run_config(to_json(c), "resolved");
  EXPECT_EQ(to_json(again), to_json(c));
}

TEST(Config, CudaRuntimeKeys) {
  RunConfig c = parse_run_config(minimal(), "run.json");
  EXPECT_EQ(c.runtime.attention_backend, "auto");
  EXPECT_TRUE(c.runtime.tf32);
  EXPECT_EQ(c.runtime.cuda_sync_debug, "off");
  nlohmann::json j = minimal();
  j["runtime"] = {{"attention_backend", "efficient"}, {"tf32", false}, {"cuda_sync_debug", "error"}};
  c = parse_run_config(j, "run.json");
  EXPECT_EQ(c.runtime.attention_backend, "efficient");
  EXPECT_FALSE(c.runtime.tf32);
  EXPECT_EQ(c.runtime.cuda_sync_debug, "error");
  j["runtime"] = {{"attention_backend", "fastest"}};
  EXPECT_NE(error_of(j).find("runtime.attention_backend"), std::string::npos) << error_of(j);
  j["runtime"] = {{"cuda_sync_debug", "loud"}};
  EXPECT_NE(error_of(j).find("runtime.cuda_sync_debug"), std::string::npos) << error_of(j);
}

TEST(Config, UnknownKeySuggestsTheClosest) {
  auto j = minimal();
  j["training"]["learning_rat"] = 1;
  j["training"]["lr"] = 1e-3;
  j.erase("training");
  j["training"] = {{"lrr", 0.1}};
  std::string e = error_of(j);
  EXPECT_NE(e.find("training.lrr"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean \"lr\""), std::string::npos) << e;
  auto top = minimal();
  top["trainig"] = nlohmann::json::object();
  e = error_of(top);
  EXPECT_NE(e.find("did you mean \"training\""), std::string::npos) << e;
}

TEST(Config, WrongTypeNamesThePath) {
  auto j = minimal();
  j["training"] = {{"batch_size", "32"}};
  std::string e = error_of(j);
  EXPECT_NE(e.find("training.batch_size"), std::string::npos) << e;
  EXPECT_NE(e.find("wrong type"), std::string::npos) << e;
}

TEST(Config, RangesAndCrossChecks) {
  auto j = minimal();
  j["model"] = {{"hidden_size", 250}, {"num_heads", 4}};
  EXPECT_NE(error_of(j).find("not divisible by model.num_heads"), std::string::npos);
  j = minimal();
  j["data"]["max_seq_len"] = 1024;
  EXPECT_NE(error_of(j).find("max_position_embeddings"), std::string::npos);
  j = minimal();
  j["masking"] = {{"mask_token_prob", 0.95}, {"random_token_prob", 0.1}};
  EXPECT_NE(error_of(j).find("exceeds 1"), std::string::npos);
  j = minimal();
  j["training"] = {{"precision", "fp8"}};
  EXPECT_NE(error_of(j).find("not one of"), std::string::npos);
  j = minimal();
  j["runtime"] = {{"device", "gpu"}};
  EXPECT_NE(error_of(j).find("runtime.device"), std::string::npos);
  j = minimal();
  j["data"].erase("vocab_dir");
  EXPECT_NE(error_of(j).find("data.vocab_dir is required"), std::string::npos);
}

TEST(Config, OverridesParseJsonOrTakeStrings) {
  auto j = minimal();
  apply_override(j, "training.lr=0.002");
  apply_override(j, "runtime.device=cpu");
  apply_override(j, "data.train_files=[\"x.txt\",\"y.txt\"]");
  RunConfig c = parse_run_config(j, "run.json");
  EXPECT_DOUBLE_EQ(c.training.lr, 0.002);
  EXPECT_EQ(c.runtime.device, "cpu");
  ASSERT_EQ(c.data.train_files.size(), 2u);
  EXPECT_THROW(apply_override(j, "lr=1"), util::Error);
}

// Found by tests/fuzz/json_config_fuzz: a --set value that is not UTF-8 became a JSON string that
// nlohmann cannot dump, so the wrong-type message (and later run_config.json) threw type_error 316,
// which no caller catches. It is now a usage error at the override.
TEST(Config, OverrideThatIsNotUtf8IsAUsageError) {
  nlohmann::json j = minimal();
  util::ErrorKind kind = util::ErrorKind::kRuntime;
  std::string msg;
  try {
    apply_override(j, "training.lr=\xff\xfe");
  } catch (const util::Error& e) {
    kind = e.kind();
    msg = e.what();
  }
  EXPECT_EQ(kind, util::ErrorKind::kUsage);
  EXPECT_NE(msg.find("not valid UTF-8"), std::string::npos) << msg;
  EXPECT_NO_THROW(apply_override(j, "runtime.device=cuda:0"));
  EXPECT_NO_THROW(apply_override(j, "checkpoint.dir=runs/zażółć"));
}

// Found by tests/fuzz/json_config_fuzz: --set training.lr=1e999 let nlohmann's out_of_range escape
// apply_override (it caught only parse_error). The value is now taken as a string, and the key that
// wants a number names itself.
TEST(Config, OverrideWithANumberBeyondADoubleIsAUsageError) {
  nlohmann::json j = minimal();
  ASSERT_NO_THROW(apply_override(j, "training.lr=1e999"));
  EXPECT_NE(error_of(j).find("training.lr has the wrong type: expected a number, got \"1e999\""), std::string::npos)
      << error_of(j);
}

// Found by tests/fuzz/json_config_fuzz: --set on a config file that holds a number or an array
// made nlohmann throw type_error 305 (operator[] on a non-object) out of apply_override.
TEST(Config, OverrideOnAConfigThatIsNotAnObjectIsAUsageError) {
  for (nlohmann::json j : {nlohmann::json(-4), nlohmann::json::array(), nlohmann::json("text")}) {
    util::ErrorKind kind = util::ErrorKind::kRuntime;
    std::string msg;
    try {
      apply_override(j, "training.lr=1e-4");
    } catch (const util::Error& e) {
      kind = e.kind();
      msg = e.what();
    }
    EXPECT_EQ(kind, util::ErrorKind::kUsage) << j.dump();
    EXPECT_NE(msg.find("the config must be a JSON object"), std::string::npos) << msg;
  }
}

TEST(Config, InvalidJsonReportsLineAndColumn) {
  auto path = std::filesystem::temp_directory_path() / "bert_config_test_bad.json";
  std::ofstream(path) << "{\n  \"data\": {\n    \"vocab_dir\": \"v\",,\n  }\n}\n";
  try {
    load_run_config(path);
    FAIL() << "expected an error";
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find(path.string() + ":3:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_run_config("/nonexistent/run.json"), util::Error);
}

TEST(Config, DuplicateKeysAreRejectedWithTheirPath) {
  auto path = std::filesystem::temp_directory_path() / "bert_config_test_dup.json";
  std::ofstream(path) << R"({"data": {"train_files": ["a"], "vocab_dir": "v"},
    "training": {"max_steps": 3, "lr": 0.1, "max_steps": 5}})";
  try {
    load_run_config(path);
    FAIL() << "expected an error";
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("\"training.max_steps\" appears twice"), std::string::npos) << e.what();
  }
  // The same key in two different objects is fine.
  std::ofstream(path) << R"({"data": {"train_files": ["a"], "vocab_dir": "v", "max_seq_len": 64},
    "model": {"max_position_embeddings": 64}, "training": {"seed": 1}, "runtime": {"threads": 1}})";
  EXPECT_NO_THROW(load_run_config(path));
}


TEST(Config, DurationsParseToSeconds) {
  EXPECT_DOUBLE_EQ(parse_duration_s("600", "t"), 600);
  EXPECT_DOUBLE_EQ(parse_duration_s("90s", "t"), 90);
  EXPECT_DOUBLE_EQ(parse_duration_s("8m", "t"), 480);
  EXPECT_DOUBLE_EQ(parse_duration_s("2h", "t"), 7200);
  EXPECT_DOUBLE_EQ(parse_duration_s("1h30m", "t"), 5400);
  EXPECT_DOUBLE_EQ(parse_duration_s("1h 30m 15s", "t"), 5415);
  EXPECT_DOUBLE_EQ(parse_duration_s("1.5h", "t"), 5400);
  EXPECT_DOUBLE_EQ(parse_duration_s("0.5m", "t"), 30);
  for (const char* bad : {"", " ", "m", "10x", "1m2h", "5m5m", "-3m", "inf", "nan", "0x10", "1e3", "10 minutes", "h1"}) {
    try {
      parse_duration_s(bad, "training.time_budget");
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const util::Error& e) {
      EXPECT_EQ(e.kind(), util::ErrorKind::kUsage);
      EXPECT_NE(std::string(e.what()).find("training.time_budget"), std::string::npos) << e.what();
    }
  }
}

TEST(Config, TimeBudgetMakesMaxStepsACap) {
  nlohmann::json j = minimal();
  j["training"] = {{"time_budget", "8m"}};
  RunConfig c = parse_run_config(j, "run.json");
  EXPECT_DOUBLE_EQ(c.training.time_budget_s, 480);
  EXPECT_EQ(c.training.max_steps, 0);  // no cap unless given
  j["training"] = {{"time_budget", 90}, {"max_steps", 500}};
  c = parse_run_config(j, "run.json");
  EXPECT_DOUBLE_EQ(c.training.time_budget_s, 90);
  EXPECT_EQ(c.training.max_steps, 500);
  // Without a budget max_steps keeps its default, and 0 is refused.
  EXPECT_EQ(parse_run_config(minimal(), "run.json").training.max_steps, 2000);
  j["training"] = {{"max_steps", 0}};
  EXPECT_NE(error_of(j).find("training.max_steps"), std::string::npos);
  j["training"] = {{"time_budget", "ten minutes"}};
  EXPECT_NE(error_of(j).find("training.time_budget"), std::string::npos);
  j["training"] = {{"time_budget", true}};
  EXPECT_NE(error_of(j).find("training.time_budget"), std::string::npos);
  j["training"] = {{"time_budget", -5}};
  EXPECT_NE(error_of(j).find("training.time_budget"), std::string::npos);
  // The resolved JSON round-trips (the budget is written in seconds).
  j["training"] = {{"time_budget", "1h30m"}};
  c = parse_run_config(j, "run.json");
  EXPECT_EQ(to_json(parse_run_config(to_json(c), "resolved")), to_json(c));
  EXPECT_EQ(to_json(c)["training"]["time_budget"], 5400.0);
}

TEST(Config, TargetAccuracyNeedsValidationInTheLoop) {
  nlohmann::json j = minimal();
  j["training"] = {{"target_accuracy", 0.3}};
  EXPECT_NE(error_of(j).find("training.target_accuracy needs validation"), std::string::npos);
  j["data"]["valid_files"] = {"v.txt"};
  j["runtime"] = {{"eval_every", 0}};
  EXPECT_NE(error_of(j).find("training.target_accuracy needs validation"), std::string::npos);
  j["runtime"] = {{"eval_every", 100}};
  EXPECT_DOUBLE_EQ(parse_run_config(j, "run.json").training.target_accuracy, 0.3);
  j["training"] = {{"target_accuracy", 1.5}};
  EXPECT_NE(error_of(j).find("training.target_accuracy"), std::string::npos);
}

TEST(Config, ModelInitIsNormalOrLocal) {
  nlohmann::json j = minimal();
  EXPECT_EQ(parse_run_config(j, "run.json").model.init, "normal");
  j["model"] = {{"init", "local"}};
  EXPECT_EQ(parse_run_config(j, "run.json").model.init, "local");
  EXPECT_EQ(to_json(parse_run_config(j, "run.json"))["model"]["init"], "local");
  j["model"] = {{"init", "xavier"}};
  EXPECT_NE(error_of(j).find("model.init"), std::string::npos);
}

TEST(Config, StandardEvalMaskingIsBertsAndComparesField_by_field) {
  const data::MaskingOptions s = standard_eval_masking();
  EXPECT_DOUBLE_EQ(s.mask_prob, 0.15);
  EXPECT_DOUBLE_EQ(s.mask_token_prob, 0.8);
  EXPECT_DOUBLE_EQ(s.random_token_prob, 0.1);
  EXPECT_FALSE(s.whole_word);
  EXPECT_TRUE(same_masking(s, s));
  // Each field alone makes a different masking.
  const std::vector<std::function<void(data::MaskingOptions&)>> changes = {
      [](data::MaskingOptions& o) { o.mask_prob = 0.3; },
      [](data::MaskingOptions& o) { o.mask_token_prob = 1.0; },
      [](data::MaskingOptions& o) { o.random_token_prob = 0.0; },
      [](data::MaskingOptions& o) { o.whole_word = true; },
      [](data::MaskingOptions& o) { o.max_predictions_per_seq = 20; },
      [](data::MaskingOptions& o) { o.at_least_one = false; }};
  for (size_t i = 0; i < changes.size(); ++i) {
    data::MaskingOptions o = s;
    changes[i](o);
    EXPECT_FALSE(same_masking(s, o)) << "field " << i;
  }
}

}  // namespace
}  // namespace bert::run
