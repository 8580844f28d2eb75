// BertConfig validation and its mapping to/from Hugging Face's config.json (BertConfig keys).
#include "model/bert_config.h"

#include <climits>
#include <cmath>
#include <optional>
#include <vector>

#include "util/error.h"

namespace bert::model {

namespace {

using util::Error;
using util::ErrorKind;

// The private key carrying our norm placement in config.json; transformers keeps unknown keys as
// plain attributes, so a config with it still loads.
constexpr const char* kNormKey = "bert_pretrain_norm";

const std::vector<std::string> kNorms = {"post", "pre"};
const std::vector<std::string> kActivations = {"gelu", "gelu_new", "relu"};
const std::vector<std::string> kInits = {"normal", "local"};

bool one_of(const std::string& v, const std::vector<std::string>& allowed) {
  for (const auto& a : allowed) if (v == a) return true;
  return false;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", \"" : "\"") + v[i] + "\"";
  return out;
}

[[noreturn]] void bad(const std::string& key, const std::string& what) {
  throw util::usage_error("model." + key + " " + what);
}

void positive(const std::string& key, int v) {
  if (v <= 0) bad(key, "must be positive, got " + std::to_string(v));
}

void dropout(const std::string& key, double p) {
  if (!(p >= 0.0 && p < 1.0)) bad(key, "must be in [0, 1), got " + std::to_string(p));
}

}  // namespace

void BertConfig::validate() const {
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("num_layers", num_layers);
  positive("num_heads", num_heads);
  positive("intermediate_size", intermediate_size);
  positive("max_position_embeddings", max_position_embeddings);
  positive("type_vocab_size", type_vocab_size);
  if (hidden_size % num_heads != 0) {
    bad("hidden_size", "(" + std::to_string(hidden_size) + ") must be divisible by model.num_heads (" +
                           std::to_string(num_heads) + ")");
  }
  dropout("hidden_dropout", hidden_dropout);
  dropout("attention_dropout", attention_dropout);
  if (!(layer_norm_eps > 0.0 && std::isfinite(layer_norm_eps))) {
    bad("layer_norm_eps", "must be a positive number, got " + std::to_string(layer_norm_eps));
  }
  if (!(initializer_range > 0.0 && std::isfinite(initializer_range))) {
    bad("initializer_range", "must be a positive number, got " + std::to_string(initializer_range));
  }
  if (!one_of(norm, kNorms)) bad("norm", "must be one of " + join(kNorms) + ", got \"" + norm + "\"");
  if (!one_of(activation, kActivations)) {
    bad("activation", "must be one of " + join(kActivations) + ", got \"" + activation + "\"");
  }
  if (!one_of(init, kInits)) bad("init", "must be one of " + join(kInits) + ", got \"" + init + "\"");
  if (init == "local" && hidden_size / num_heads < 2) {
    bad("init", "= \"local\" needs a head size (hidden_size / num_heads) of at least 2, got " +
                    std::to_string(hidden_size / num_heads));
  }
  if (pad_token_id < 0 || pad_token_id >= vocab_size) {
    bad("pad_token_id", "must be in [0, vocab_size=" + std::to_string(vocab_size) + "), got " +
                            std::to_string(pad_token_id));
  }
}

nlohmann::json BertConfig::to_hf_json() const {
  nlohmann::json j;
  j["architectures"] = {"BertForPreTraining"};
  j["model_type"] = "bert";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["num_hidden_layers"] = num_layers;
  j["num_attention_heads"] = num_heads;
  j["intermediate_size"] = intermediate_size;
  j["hidden_act"] = activation;
  j["hidden_dropout_prob"] = hidden_dropout;
  j["attention_probs_dropout_prob"] = attention_dropout;
  j["max_position_embeddings"] = max_position_embeddings;
  j["type_vocab_size"] = type_vocab_size;
  j["initializer_range"] = initializer_range;
  j["layer_norm_eps"] = layer_norm_eps;
  j["pad_token_id"] = pad_token_id;
  j["position_embedding_type"] = "absolute";
  j["tie_word_embeddings"] = true;
  j["dtype"] = "float32";
  j[kNormKey] = norm;
  return j;
}

namespace {

// Reads HF config keys strictly by type; absent optional keys keep HF BertConfig's defaults.
class HfReader {
 public:
  HfReader(const nlohmann::json& j, const std::string& source) : j_(j), source_(source) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw util::input_error(source_ + ": config key \"" + key + "\" " + what);
  }
  int get_int(const std::string& key, std::optional<int> fallback) const {
    if (!j_.contains(key) || j_[key].is_null()) {
      if (!fallback) fail(key, "is required but missing");
      return *fallback;
    }
    const auto& v = j_[key];
    if (!v.is_number_integer()) fail(key, "must be an integer, got " + v.dump());
    const auto x = v.get<int64_t>();
    if (x < INT32_MIN || x > INT32_MAX) fail(key, "is out of range: " + v.dump());
    return static_cast<int>(x);
  }
  double get_double(const std::string& key, double fallback) const {
    if (!j_.contains(key) || j_[key].is_null()) return fallback;
    const auto& v = j_[key];
    if (!v.is_number()) fail(key, "must be a number, got " + v.dump());
    return v.get<double>();
  }
  std::string get_string(const std::string& key, const std::string& fallback) const {
    if (!j_.contains(key) || j_[key].is_null()) return fallback;
    const auto& v = j_[key];
    if (!v.is_string()) fail(key, "must be a string, got " + v.dump());
    return v.get<std::string>();
  }
  bool get_bool(const std::string& key, bool fallback) const {
    if (!j_.contains(key) || j_[key].is_null()) return fallback;
    const auto& v = j_[key];
    if (!v.is_boolean()) fail(key, "must be true or false, got " + v.dump());
    return v.get<bool>();
  }

 private:
  const nlohmann::json& j_;
  const std::string& source_;
};

// Our config key names (as validate() reports them) -> HF config.json key names.
std::string hf_key_for(const std::string& ours) {
  static const std::vector<std::pair<std::string, std::string>> kMap = {
      {"num_layers", "num_hidden_layers"},       {"num_heads", "num_attention_heads"},
      {"hidden_dropout", "hidden_dropout_prob"}, {"attention_dropout", "attention_probs_dropout_prob"},
      {"activation", "hidden_act"},              {"norm", kNormKey}};
  for (const auto& [a, b] : kMap) if (ours == a) return b;
  return ours;
}

}  // namespace

BertConfig BertConfig::from_hf_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw util::input_error(source + ": config must be a JSON object");
  HfReader r(j, source);
  const std::string model_type = r.get_string("model_type", "");
  if (model_type != "bert") {
    r.fail("model_type", "must be \"bert\", got \"" + model_type + "\" (only BERT checkpoints load)");
  }
  // Architectural switches of transformers' BertConfig that this model does not implement.
  if (r.get_bool("is_decoder", false)) r.fail("is_decoder", "must be false (encoder only)");
  if (r.get_bool("add_cross_attention", false)) r.fail("add_cross_attention", "must be false");
  if (!r.get_bool("tie_word_embeddings", true)) {
    r.fail("tie_word_embeddings", "must be true (the MLM decoder is tied to the word embeddings)");
  }
  const std::string pos = r.get_string("position_embedding_type", "absolute");
  if (pos != "absolute") r.fail("position_embedding_type", "must be \"absolute\", got \"" + pos + "\"");

  BertConfig c;
  c.vocab_size = r.get_int("vocab_size", std::nullopt);
  c.hidden_size = r.get_int("hidden_size", std::nullopt);
  c.num_layers = r.get_int("num_hidden_layers", std::nullopt);
  c.num_heads = r.get_int("num_attention_heads", std::nullopt);
  c.intermediate_size = r.get_int("intermediate_size", std::nullopt);
  c.max_position_embeddings = r.get_int("max_position_embeddings", 512);
  c.type_vocab_size = r.get_int("type_vocab_size", 2);
  c.hidden_dropout = r.get_double("hidden_dropout_prob", 0.1);
  c.attention_dropout = r.get_double("attention_probs_dropout_prob", 0.1);
  c.layer_norm_eps = r.get_double("layer_norm_eps", 1e-12);
  c.initializer_range = r.get_double("initializer_range", 0.02);
  c.activation = r.get_string("hidden_act", "gelu");
  c.pad_token_id = r.get_int("pad_token_id", 0);
  c.norm = r.get_string(kNormKey, "post");
  try {
    c.validate();
  } catch (const Error& e) {
    // Re-word "model.<key> ..." in terms of the HF key the user sees in config.json.
    std::string msg = e.what();
    const std::string prefix = "model.";
    if (msg.rfind(prefix, 0) == 0) {
      const auto end = msg.find(' ');
      const std::string ours = msg.substr(prefix.size(), end - prefix.size());
      r.fail(hf_key_for(ours), msg.substr(end + 1));
    }
    throw util::input_error(source + ": " + msg);
  }
  return c;
}

}  // namespace bert::model
