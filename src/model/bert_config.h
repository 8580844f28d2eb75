// Model hyperparameters: the `model` section of a run config, and Hugging Face's BertConfig
// (config.json) for export/import. No torch here.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace bert::model {

struct BertConfig {
  int vocab_size = 30522;               // set from the vocabulary
  int hidden_size = 256;                // d_model
  int num_layers = 4;                   // encoder layers
  int num_heads = 4;                    // attention heads; d_k = hidden_size / num_heads
  int intermediate_size = 1024;         // feed-forward inner size
  int max_position_embeddings = 512;    // learned absolute positions
  int type_vocab_size = 2;              // segment (token type) ids
  double hidden_dropout = 0.1;          // after embeddings, attention output, feed-forward
  double attention_dropout = 0.1;       // on attention probabilities
  double layer_norm_eps = 1e-12;        // as BERT
  double initializer_range = 0.02;      // N(0, 0.02) init
  std::string norm = "post";            // "post" (BERT) | "pre" (not loadable by transformers' Bert*)
  std::string activation = "gelu";      // "gelu" (erf) | "gelu_new" (tanh approx) | "relu"
  // Starting values: "normal" (BERT: N(0, initializer_range) everywhere) or "local" (the same, but
  // sinusoidal positions and attention heads that start on neighbour offsets: model/local_init.h).
  // Only the start differs; not part of config.json.
  std::string init = "normal";
  int pad_token_id = 0;

  // Throws Error(kUsage) naming the key: hidden_size % num_heads != 0, non-positive sizes, etc.
  void validate() const;
  // Hugging Face BertConfig JSON ("architectures": ["BertForPreTraining"], "model_type": "bert", ...).
  nlohmann::json to_hf_json() const;
  // Reads a Hugging Face config.json object; throws Error(kInput) on missing/invalid keys.
  static BertConfig from_hf_json(const nlohmann::json& j, const std::string& source);
};

}  // namespace bert::model
