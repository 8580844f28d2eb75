// Embeddings, encoder layer and MLM head: the arithmetic of BERT, matching transformers' modeling_bert.
#include "model/layers.h"

#include "model/attention.h"
#include "model/dropout.h"
#include "util/error.h"

namespace bert::model {

namespace nn = torch::nn;

std::shared_ptr<nn::Module> add_node(nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<nn::Module>());
}

torch::Tensor activate(const torch::Tensor& x, const std::string& activation) {
  if (activation == "gelu") return torch::gelu(x);
  if (activation == "gelu_new") return torch::gelu(x, "tanh");
  if (activation == "relu") return torch::relu(x);
  throw util::usage_error("model.activation: unsupported \"" + activation + "\"");
}

namespace {
nn::LayerNorm make_norm(const BertConfig& c) {
  return nn::LayerNorm(nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
}
nn::Linear make_linear(int64_t in, int64_t out) { return nn::Linear(nn::LinearOptions(in, out)); }
}  // namespace

// ---- Embeddings ----------------------------------------------------------------------------------

EmbeddingsImpl::EmbeddingsImpl(const BertConfig& c)
    : dropout_(c.hidden_dropout), max_positions_(c.max_position_embeddings) {
  word_embeddings = register_module(
      "word_embeddings",
      nn::Embedding(nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(c.pad_token_id)));
  position_embeddings = register_module(
      "position_embeddings", nn::Embedding(c.max_position_embeddings, c.hidden_size));
  token_type_embeddings = register_module(
      "token_type_embeddings", nn::Embedding(c.type_vocab_size, c.hidden_size));
  layer_norm = register_module("LayerNorm", make_norm(c));
}

torch::Tensor EmbeddingsImpl::forward(const torch::Tensor& input_ids,
                                      const torch::Tensor& token_type_ids) {
  const int64_t seq_len = input_ids.size(1);
  if (seq_len > max_positions_) {
    throw util::input_error("sequence length " + std::to_string(seq_len) +
                            " exceeds model.max_position_embeddings " + std::to_string(max_positions_));
  }
  auto x = word_embeddings(input_ids);                                   // [B, T, H]
  if (token_type_ids.defined()) {
    x = x + token_type_embeddings(token_type_ids);                       // [B, T, H]
  } else {
    x = x + token_type_embeddings->weight[0];                            // [H] broadcast
  }
  x = x + position_embeddings->weight.narrow(0, 0, seq_len);             // [T, H] broadcast
  x = layer_norm(x);                                                     // [B, T, H]
  return hash_dropout(x, dropout_, is_training());
}

// ---- Encoder layer -------------------------------------------------------------------------------

EncoderLayerImpl::EncoderLayerImpl(const BertConfig& c)
    : num_heads_(c.num_heads),
      hidden_dropout_(c.hidden_dropout),
      attention_dropout_(c.attention_dropout),
      pre_norm_(c.norm == "pre"),
      activation_(c.activation) {
  const int64_t h = c.hidden_size;
  auto attention = add_node(*this, "attention");
  auto self = add_node(*attention, "self");
  query_ = self->register_module("query", make_linear(h, h));
  key_ = self->register_module("key", make_linear(h, h));
  value_ = self->register_module("value", make_linear(h, h));
  auto attn_output = add_node(*attention, "output");
  attn_dense_ = attn_output->register_module("dense", make_linear(h, h));
  attn_norm_ = attn_output->register_module("LayerNorm", make_norm(c));
  inter_dense_ = add_node(*this, "intermediate")->register_module("dense", make_linear(h, c.intermediate_size));
  auto output = add_node(*this, "output");
  out_dense_ = output->register_module("dense", make_linear(c.intermediate_size, h));
  out_norm_ = output->register_module("LayerNorm", make_norm(c));
}

torch::Tensor EncoderLayerImpl::self_attention(const torch::Tensor& x, const torch::Tensor& key_mask) {
  const int64_t batch = x.size(0), seq = x.size(1), hidden = x.size(2);
  const int64_t head_dim = hidden / num_heads_;
  // One [H] -> [3H] matmul instead of three: the weights stay separate HF parameters and are
  // concatenated per call (3H^2 copies, negligible next to the B*T*H*3H matmul).
  const auto w = torch::cat({query_->weight, key_->weight, value_->weight}, 0);  // [3H, H]
  const auto b = torch::cat({query_->bias, key_->bias, value_->bias}, 0);        // [3H]
  const auto qkv = torch::linear(x, w, b)                                        // [B, T, 3H]
                       .view({batch, seq, 3, num_heads_, head_dim})              // [B, T, 3, h, d]
                       .permute({2, 0, 3, 1, 4});                                // [3, B, h, T, d]
  std::optional<torch::Tensor> mask;
  if (key_mask.defined()) mask = key_mask;
  // unbind, not qkv[i]: three select()s would each allocate and zero a [3, B, h, T, d] gradient.
  const auto parts = qkv.unbind(0);                                              // 3 x [B, h, T, d]
  auto ctx = attention(parts[0], parts[1], parts[2], mask, attention_dropout_, is_training());  // [B, h, T, d]
  ctx = ctx.transpose(1, 2).reshape({batch, seq, hidden});                       // [B, T, H]
  return hash_dropout(attn_dense_(ctx), hidden_dropout_, is_training());       // [B, T, H]
}

torch::Tensor EncoderLayerImpl::feed_forward(const torch::Tensor& x) {
  auto inner = activate(inter_dense_(x), activation_);                    // [B, T, I]
  return hash_dropout(out_dense_(inner), hidden_dropout_, is_training());  // [B, T, H]
}

torch::Tensor EncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& key_mask) {
  if (pre_norm_) {
    auto h = x + self_attention(attn_norm_(x), key_mask);  // [B, T, H]
    return h + feed_forward(out_norm_(h));                 // [B, T, H]
  }
  auto h = attn_norm_(x + self_attention(x, key_mask));    // [B, T, H]
  return out_norm_(h + feed_forward(h));                   // [B, T, H]
}

// ---- MLM head ------------------------------------------------------------------------------------

MlmHeadImpl::MlmHeadImpl(const BertConfig& c) : activation_(c.activation) {
  bias = register_parameter("bias", torch::zeros({c.vocab_size}));
  auto transform = add_node(*this, "transform");
  dense_ = transform->register_module("dense", make_linear(c.hidden_size, c.hidden_size));
  norm_ = transform->register_module("LayerNorm", make_norm(c));
}

torch::Tensor MlmHeadImpl::forward(const torch::Tensor& hidden, const torch::Tensor& decoder_weight) {
  auto t = norm_(activate(dense_(hidden), activation_));  // [N, H]
  return torch::linear(t, decoder_weight, bias);          // [N, V]
}

}  // namespace bert::model
