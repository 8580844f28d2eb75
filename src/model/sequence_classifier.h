// BERT for sequence classification, as Hugging Face's BertForSequenceClassification: the encoder
// and pooler of a BertForPreTraining (shared, not copied), then dropout and a linear classifier on
// the pooled [CLS] vector. named_parameters() are transformers' keys (bert.*, classifier.weight,
// classifier.bias); the masked-LM and NSP heads are not part of it (not trained, not saved).
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "model/bert_model.h"

namespace bert::model {

class BertForSequenceClassificationImpl : public torch::nn::Module {
 public:
  // Wraps `encoder` (its "bert" submodule becomes this module's "bert") with a new classifier of
  // `num_labels` outputs, initialised as transformers does (weight ~ N(0, initializer_range) drawn
  // from a CPU generator seeded with `init_seed`, bias 0). Dropout before the classifier is the
  // encoder's hidden_dropout. The classifier is created on the encoder's device, in fp32.
  BertForSequenceClassificationImpl(BertForPreTraining encoder, int num_labels, uint64_t init_seed);

  // [B, T] int64 ids, token types (or undefined = all 0) and attention mask (or undefined = no
  // padding) -> logits [B, num_labels] in fp32. Dropout follows is_training().
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& attention_mask);
  // The pooled [CLS] vectors [B, H], the head's input (for probing with a frozen encoder).
  torch::Tensor pooled_features(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                const torch::Tensor& attention_mask);
  // The parameters below the pooler (embeddings and encoder layers): what --probe freezes.
  std::vector<torch::Tensor> encoder_parameters();
  // Probing: the embeddings and encoder layers stop requiring grad and always run in eval mode (no
  // dropout) without autograd; the pooler and the classifier (transformers' head) still train.
  void freeze_encoder();
  bool encoder_frozen() const { return frozen_; }

  void train(bool on = true) override;
  BertForPreTraining& encoder() { return encoder_; }
  int num_labels() const { return num_labels_; }

  // A transformers BertForSequenceClassification directory: config.json (architectures,
  // id2label / label2id from `labels`, num_labels implied) and model.safetensors (fp32), written
  // atomically into `dir` (created if needed). The tokenizer files are the caller's (Vocab::save).
  void save_pretrained(const std::filesystem::path& dir, const std::vector<std::string>& labels);

 private:
  BertForPreTraining encoder_;
  torch::nn::Linear classifier_{nullptr};
  double dropout_;
  int num_labels_;
  bool frozen_ = false;
};
TORCH_MODULE(BertForSequenceClassification);

}  // namespace bert::model
