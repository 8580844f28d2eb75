// The building blocks of BERT (internal to the model layer): embeddings, one encoder layer, the MLM
// prediction head. Each registers its parameters under Hugging Face's names, so the assembled model's
// named_parameters() are transformers' BertForPreTraining state-dict keys.
#pragma once

#include <torch/torch.h>

#include "model/bert_config.h"

namespace bert::model {

// A parameter-less node in the name tree ("attention", "self", ...): HF nests modules that only
// group others, and the nesting is part of every key.
std::shared_ptr<torch::nn::Module> add_node(torch::nn::Module& parent, const std::string& name);

// Applies config.activation ("gelu" erf, "gelu_new" tanh approximation, "relu").
torch::Tensor activate(const torch::Tensor& x, const std::string& activation);

// word + learned absolute position + token type embeddings, then LayerNorm and dropout.
// Parameters: word_embeddings.weight [V, H], position_embeddings.weight [P, H],
// token_type_embeddings.weight [S, H], LayerNorm.{weight,bias} [H].
class EmbeddingsImpl : public torch::nn::Module {
 public:
  explicit EmbeddingsImpl(const BertConfig& config);
  // input_ids, token_type_ids: [B, T] int64 (token_type_ids may be undefined = all 0).
  // Returns [B, T, H]. Throws Error(kInput) if T exceeds max_position_embeddings.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids);

  torch::nn::Embedding word_embeddings{nullptr};
  torch::nn::Embedding position_embeddings{nullptr};
  torch::nn::Embedding token_type_embeddings{nullptr};
  torch::nn::LayerNorm layer_norm{nullptr};

 private:
  double dropout_;
  int64_t max_positions_;
};
TORCH_MODULE(Embeddings);

// One encoder layer: multi-head self-attention (model/attention.h) and a GELU feed-forward, each
// with dropout and a residual; LayerNorm after each residual ("post", BERT) or before each sublayer ("pre",
// reusing the same two LayerNorms: attention.output.LayerNorm before attention, output.LayerNorm
// before the feed-forward).
class EncoderLayerImpl : public torch::nn::Module {
 public:
  explicit EncoderLayerImpl(const BertConfig& config);
  // x: [B, T, H]; key_mask: [B, 1, 1, T] bool (true = attend) or undefined (attend everywhere).
  // Returns [B, T, H].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_mask);

 private:
  torch::Tensor self_attention(const torch::Tensor& x, const torch::Tensor& key_mask);  // [B, T, H]
  torch::Tensor feed_forward(const torch::Tensor& x);                                   // [B, T, H]

  torch::nn::Linear query_{nullptr}, key_{nullptr}, value_{nullptr};  // attention.self.*
  torch::nn::Linear attn_dense_{nullptr};                            // attention.output.dense
  torch::nn::LayerNorm attn_norm_{nullptr};                          // attention.output.LayerNorm
  torch::nn::Linear inter_dense_{nullptr};                           // intermediate.dense
  torch::nn::Linear out_dense_{nullptr};                             // output.dense
  torch::nn::LayerNorm out_norm_{nullptr};                           // output.LayerNorm
  int64_t num_heads_;
  double hidden_dropout_;
  double attention_dropout_;
  bool pre_norm_;
  std::string activation_;
};
TORCH_MODULE(EncoderLayer);

// cls.predictions: transform (dense, activation, LayerNorm) then the decoder, whose weight is the
// word embedding matrix (tied, passed in) and whose bias is this module's own `bias` [V].
class MlmHeadImpl : public torch::nn::Module {
 public:
  explicit MlmHeadImpl(const BertConfig& config);
  // hidden: [N, H] (or [B, T, H]); decoder_weight: [V, H]. Returns logits [N, V] (or [B, T, V]).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& decoder_weight);

  torch::Tensor bias;  // [V] cls.predictions.bias

 private:
  torch::nn::Linear dense_{nullptr};        // transform.dense
  torch::nn::LayerNorm norm_{nullptr};      // transform.LayerNorm
  std::string activation_;
};
TORCH_MODULE(MlmHead);

}  // namespace bert::model
