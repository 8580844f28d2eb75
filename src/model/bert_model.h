// BERT for pre-training: embeddings -> N encoder layers -> MLM head (+ pooler and NSP head).
// Submodule names are Hugging Face BertForPreTraining parameter names, so named_parameters() keys
// are exactly the keys of a transformers checkpoint (bert.encoder.layer.0.attention.self.query.weight).
#pragma once

#include <torch/torch.h>

#include "model/bert_config.h"

namespace bert::model {

struct PretrainingOutput {
  torch::Tensor loss;          // [] mlm_loss (+ nsp_loss when NSP labels given), fp32
  torch::Tensor mlm_loss;      // [] mean cross-entropy over predicted positions
  torch::Tensor nsp_loss;      // [] or undefined
  torch::Tensor mlm_logits;    // [N, V] logits at the N predicted positions only (labels != -100)
  torch::Tensor mlm_targets;   // [N] the labels at those positions
  torch::Tensor nsp_logits;    // [B, 2] or undefined
};

class BertForPreTrainingImpl : public torch::nn::Module {
 public:
  explicit BertForPreTrainingImpl(const BertConfig& config);

  // input_ids, token_type_ids, attention_mask, mlm_labels: [B, T] int64; nsp_labels: [B] int64
  // (undefined or all -100 = no NSP loss). The MLM head runs only where mlm_labels != -100.
  PretrainingOutput forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                            const torch::Tensor& attention_mask, const torch::Tensor& mlm_labels,
                            const torch::Tensor& nsp_labels = {});
  // Full MLM logits [B, T, V] and NSP logits [B, 2], for fill-mask and parity tests.
  std::pair<torch::Tensor, torch::Tensor> logits(const torch::Tensor& input_ids,
                                                 const torch::Tensor& token_type_ids,
                                                 const torch::Tensor& attention_mask);
  const BertConfig& config() const { return config_; }

 private:
  BertConfig config_;
  // (submodules registered under "bert" and "cls"; see bert_model.cc)
};
TORCH_MODULE(BertForPreTraining);

}  // namespace bert::model
