// BertConfig: validation messages and the HF config.json mapping.
#include "model/bert_config.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace bert::model {
namespace {

using util::Error;
using util::ErrorKind;

// Runs `f` and returns the Error it throws; fails the test if it throws nothing.
template <typename F>
Error thrown_by(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected an Error";
  return Error(ErrorKind::kRuntime, "none");
}

TEST(BertConfig, DefaultsAreValid) { EXPECT_NO_THROW(BertConfig{}.validate()); }

TEST(BertConfig, ValidateNamesTheKey) {
  struct Case {
    void (*mutate)(BertConfig&);
    const char* key;
  };
  const Case cases[] = {
      {[](BertConfig& c) { c.num_heads = 3; }, "model.hidden_size"},
      {[](BertConfig& c) { c.hidden_size = 0; }, "model.hidden_size"},
      {[](BertConfig& c) { c.num_layers = -1; }, "model.num_layers"},
      {[](BertConfig& c) { c.num_heads = 0; }, "model.num_heads"},
      {[](BertConfig& c) { c.vocab_size = 0; }, "model.vocab_size"},
      {[](BertConfig& c) { c.intermediate_size = 0; }, "model.intermediate_size"},
      {[](BertConfig& c) { c.max_position_embeddings = 0; }, "model.max_position_embeddings"},
      {[](BertConfig& c) { c.type_vocab_size = 0; }, "model.type_vocab_size"},
      {[](BertConfig& c) { c.hidden_dropout = 1.0; }, "model.hidden_dropout"},
      {[](BertConfig& c) { c.attention_dropout = -0.1; }, "model.attention_dropout"},
      {[](BertConfig& c) { c.layer_norm_eps = 0; }, "model.layer_norm_eps"},
      {[](BertConfig& c) { c.initializer_range = -1; }, "model.initializer_range"},
      {[](BertConfig& c) { c.norm = "sandwich"; }, "model.norm"},
      {[](BertConfig& c) { c.activation = "swish"; }, "model.activation"},
      {[](BertConfig& c) { c.pad_token_id = 30522; }, "model.pad_token_id"},
  };
  for (const auto& tc : cases) {
    BertConfig c;
    tc.mutate(c);
    const Error e = thrown_by([&] { c.validate(); });
    EXPECT_EQ(e.kind(), ErrorKind::kUsage) << tc.key;
    EXPECT_EQ(std::string(e.what()).rfind(tc.key, 0), 0u) << "message: " << e.what();
  }
  BertConfig c;
  c.num_heads = 3;
  EXPECT_NE(std::string(thrown_by([&] { c.validate(); }).what()).find("divisible by model.num_heads (3)"),
            std::string::npos);
}

TEST(BertConfig, HfJsonRoundTrip) {
  BertConfig c;
  c.vocab_size = 1234;
  c.hidden_size = 96;
  c.num_layers = 3;
  c.num_heads = 6;
  c.intermediate_size = 200;
  c.max_position_embeddings = 64;
  c.type_vocab_size = 3;
  c.hidden_dropout = 0.05;
  c.attention_dropout = 0.0;
  c.layer_norm_eps = 1e-6;
  c.initializer_range = 0.01;
  c.norm = "pre";
  c.activation = "gelu_new";
  c.pad_token_id = 7;
  const auto j = c.to_hf_json();
  EXPECT_EQ(j["model_type"], "bert");
  EXPECT_EQ(j["architectures"][0], "BertForPreTraining");
  EXPECT_EQ(j["num_hidden_layers"], 3);
  EXPECT_EQ(j["num_attention_heads"], 6);
  EXPECT_EQ(j["hidden_act"], "gelu_new");
  EXPECT_EQ(j["attention_probs_dropout_prob"], 0.0);
  EXPECT_EQ(j["bert_pretrain_norm"], "pre");
  const auto back = BertConfig::from_hf_json(j, "config.json");
  EXPECT_EQ(back.vocab_size, 1234);
  EXPECT_EQ(back.hidden_size, 96);
  EXPECT_EQ(back.num_layers, 3);
  EXPECT_EQ(back.num_heads, 6);
  EXPECT_EQ(back.intermediate_size, 200);
  EXPECT_EQ(back.max_position_embeddings, 64);
  EXPECT_EQ(back.type_vocab_size, 3);
  EXPECT_DOUBLE_EQ(back.hidden_dropout, 0.05);
  EXPECT_DOUBLE_EQ(back.attention_dropout, 0.0);
  EXPECT_DOUBLE_EQ(back.layer_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(back.initializer_range, 0.01);
  EXPECT_EQ(back.norm, "pre");
  EXPECT_EQ(back.activation, "gelu_new");
  EXPECT_EQ(back.pad_token_id, 7);
}

TEST(BertConfig, FromHfJsonDefaultsAndIgnoresMetadataKeys) {
  // A minimal config as a user might write it, plus keys transformers adds (ignored).
  const auto j = nlohmann::json::parse(R"({"model_type": "bert", "vocab_size": 100, "hidden_size": 32,
      "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
      "transformers_version": "5.24.0", "use_cache": true, "classifier_dropout": null})");
  const auto c = BertConfig::from_hf_json(j, "cfg.json");
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_EQ(c.type_vocab_size, 2);
  EXPECT_EQ(c.norm, "post");
  EXPECT_EQ(c.activation, "gelu");
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-12);
}

TEST(BertConfig, FromHfJsonRejectsWithClearErrors) {
  const auto base = BertConfig{}.to_hf_json();
  struct Case {
    const char* key;
    nlohmann::json value;  // null = erase the key
    const char* expect;
  };
  const Case cases[] = {
      {"model_type", "roberta", "\"model_type\" must be \"bert\""},
      {"hidden_size", nullptr, "\"hidden_size\" is required"},
      {"hidden_size", "256", "\"hidden_size\" must be an integer"},
      {"num_attention_heads", 5, "\"hidden_size\" (256) must be divisible"},
      {"hidden_act", "silu", "\"hidden_act\" must be one of"},
      {"hidden_dropout_prob", 1.5, "\"hidden_dropout_prob\" must be in [0, 1)"},
      {"is_decoder", true, "\"is_decoder\" must be false"},
      {"tie_word_embeddings", false, "\"tie_word_embeddings\" must be true"},
      {"position_embedding_type", "relative_key", "\"position_embedding_type\" must be \"absolute\""},
      {"bert_pretrain_norm", "middle", "\"bert_pretrain_norm\" must be one of"},
  };
  for (const auto& tc : cases) {
    auto j = base;
    if (tc.value.is_null()) j.erase(tc.key); else j[tc.key] = tc.value;
    const Error e = thrown_by([&] { BertConfig::from_hf_json(j, "dir/config.json"); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput) << tc.key;
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("dir/config.json: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(tc.expect), std::string::npos) << msg;
  }
  EXPECT_EQ(thrown_by([] { BertConfig::from_hf_json(nlohmann::json::array(), "x"); }).kind(),
            ErrorKind::kInput);
}

}  // namespace
}  // namespace bert::model
