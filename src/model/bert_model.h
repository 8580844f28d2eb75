// BERT for pre-training: embeddings -> N encoder layers -> MLM head (+ pooler and NSP head).
// Submodule names are Hugging Face BertForPreTraining parameter names, so named_parameters() keys
// are exactly the keys of a transformers checkpoint (bert.encoder.layer.0.attention.self.query.weight).
// The MLM decoder weight is the word embedding matrix itself (tied): it is not a separate parameter,
// so cls.predictions.decoder.{weight,bias} never appear (transformers' save_pretrained omits them too).
// norm == "pre" adds one parameter, the final `bert.encoder.LayerNorm.{weight,bias}`; such a model
// is not loadable by transformers' Bert* classes (they would ignore it and compute post-LN).
#pragma once

#include <torch/torch.h>

#include <optional>

#include "model/bert_config.h"

namespace bert::model {

class EmbeddingsImpl;
class EncoderLayerImpl;
class MlmHeadImpl;

struct PretrainingOutput {
  torch::Tensor loss;          // [] mlm_loss (+ nsp_loss when NSP labels given), fp32
  torch::Tensor mlm_loss;      // [] mean cross-entropy over predicted positions
  torch::Tensor nsp_loss;      // [] or undefined
  torch::Tensor mlm_logits;    // [N, V] logits at the N predicted positions only (labels != -100),
                               // in the compute dtype (bf16 under bf16 autocast; the loss is fp32)
  torch::Tensor mlm_targets;   // [N] the labels at those positions
  torch::Tensor nsp_logits;    // [B, 2] or undefined
};

// One pre-training batch, and what the caller already knows about it. With mlm_positions,
// has_padding and has_nsp given (the trainer takes them from the host batch, before the copy), the
// forward makes no host-device synchronisation; left unset, they are derived from the tensors, which
// on CUDA waits for the device (nonzero, .item()).
struct PretrainingInputs {
  torch::Tensor input_ids;          // [B, T] int64
  torch::Tensor token_type_ids;     // [B, T] int64, or undefined (all 0)
  torch::Tensor attention_mask;     // [B, T] 1 = real token, 0 = padding; or undefined (no padding)
  torch::Tensor mlm_labels;         // [B, T] int64, -100 = not predicted
  torch::Tensor nsp_labels;         // [B] int64 (-100 = no label), or undefined (no NSP loss)
  torch::Tensor mlm_positions;      // [N] int64 flat indices b*T+t where mlm_labels != -100, ascending
  std::optional<bool> has_padding;  // false: attention_mask is not applied
  std::optional<bool> has_nsp;      // false: no NSP loss; true: some nsp_labels entry is not -100
};

class BertForPreTrainingImpl : public torch::nn::Module {
 public:
  // Builds the model on the CPU in fp32 and initialises it with init_weights(init_seed). Throws
  // Error(kUsage) if config.validate() fails.
  explicit BertForPreTrainingImpl(const BertConfig& config, uint64_t init_seed = 0);

  // BERT / transformers `_init_weights`: Linear and Embedding weights ~ N(0, initializer_range),
  // biases 0 (cls.predictions.bias too), LayerNorm weight 1 and bias 0, the pad_token_id row of the
  // word embeddings 0. Draws come from a CPU torch generator seeded with `seed`, in named_parameters()
  // order, so a seed gives the same weights whatever the parameters' device or dtype (fp32 draws).
  void init_weights(uint64_t seed);

  // input_ids, token_type_ids, attention_mask, mlm_labels: [B, T] int64; nsp_labels: [B] int64
  // (undefined or all -100 = no NSP loss). The MLM head runs only where mlm_labels != -100.
  // token_type_ids may be undefined (all 0); attention_mask may be undefined (no padding).
  // Logits and losses are fp32 even under autocast (fp64 for a double model). With no predicted
  // position (N = 0) mlm_loss is a zero still connected to the graph (not NaN). The pooler and NSP
  // head run only when the NSP loss is used, and otherwise get no gradient (.grad stays undefined).
  // The attention mask is dropped when it has no padding (one host sync), so SDPA may use its
  // fastest kernel.
  // Dropout follows is_training() and draws from torch's default generator (seed it per step).
  PretrainingOutput forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                            const torch::Tensor& attention_mask, const torch::Tensor& mlm_labels,
                            const torch::Tensor& nsp_labels = {});
  // The same, trusting the host-side facts in `in` that are set (see PretrainingInputs): the
  // training step's form, free of host-device synchronisation when all three are set.
  PretrainingOutput forward(const PretrainingInputs& in);
  // Full MLM logits [B, T, V] and NSP logits [B, 2] (fp32, or fp64 for a double model), for
  // fill-mask and parity tests.
  std::pair<torch::Tensor, torch::Tensor> logits(const torch::Tensor& input_ids,
                                                 const torch::Tensor& token_type_ids,
                                                 const torch::Tensor& attention_mask);
  // Final hidden states [B, T, H] (after the final LayerNorm for "pre").
  torch::Tensor encode(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                       const torch::Tensor& attention_mask);
  // The pooler: tanh(dense(hidden[:, 0])), [B, T, H] -> [B, H] (bert.pooler.dense, [CLS] position);
  // the input of the NSP head and of sequence classification.
  torch::Tensor pooled(const torch::Tensor& hidden);
  // Data-parallel training: the MLM decoder of forward() reads `alias` -- a separate autograd leaf
  // sharing the word embeddings' storage -- instead of the word embedding parameter, so the
  // decoder's (dense) share of the tied gradient lands in alias.grad at the start of the backward,
  // apart from the embedding lookup's (sparse) share, which reaches the parameter's grad only at
  // its end; the gradient sync reduces the two separately and adds them (train/grad_sync.h). An
  // undefined tensor restores the plain tie. The values are the same either way.
  void set_decoder_alias(torch::Tensor alias) { decoder_alias_ = std::move(alias); }
  // The word embedding matrix [V, H], which is also the MLM decoder weight.
  const torch::Tensor& word_embeddings() const;
  const BertConfig& config() const { return config_; }

 private:
  torch::Tensor nsp_head(const torch::Tensor& hidden);  // [B, T, H] -> [B, 2]
  // [B, T, H]; key_mask: [B, 1, 1, T] bool or undefined (no padding).
  torch::Tensor encode_with_key_mask(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                     const torch::Tensor& key_mask);

  BertConfig config_;
  // Submodules registered under "bert" and "cls"; see bert_model.cc for the name tree.
  std::shared_ptr<EmbeddingsImpl> embeddings_;                 // bert.embeddings
  std::vector<std::shared_ptr<EncoderLayerImpl>> layers_;      // bert.encoder.layer.N
  torch::nn::LayerNorm final_norm_{nullptr};                   // bert.encoder.LayerNorm ("pre" only)
  torch::nn::Linear pooler_{nullptr};                          // bert.pooler.dense
  std::shared_ptr<MlmHeadImpl> mlm_head_;                      // cls.predictions
  torch::nn::Linear seq_relationship_{nullptr};                // cls.seq_relationship
  torch::Tensor decoder_alias_;                                // see set_decoder_alias
};
TORCH_MODULE(BertForPreTraining);

}  // namespace bert::model
