// BertForSequenceClassification over the shared encoder.
#include "model/sequence_classifier.h"

#include "model/dropout.h"
#include "model/weights.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace bert::model {

BertForSequenceClassificationImpl::BertForSequenceClassificationImpl(BertForPreTraining encoder, int num_labels,
                                                                     uint64_t init_seed)
    : encoder_(std::move(encoder)), dropout_(encoder_->config().hidden_dropout), num_labels_(num_labels) {
  if (num_labels < 2) throw util::usage_error("sequence classification needs at least 2 labels, got " +
                                              std::to_string(num_labels));
  register_module("bert", encoder_->named_children()["bert"]);
  const int hidden = encoder_->config().hidden_size;
  classifier_ = register_module("classifier", torch::nn::Linear(hidden, num_labels));
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(init_seed);
  classifier_->weight.copy_(torch::empty({num_labels, hidden}, torch::kFloat32)
                                .normal_(0.0, encoder_->config().initializer_range, gen));
  classifier_->bias.zero_();
  classifier_->to(encoder_->word_embeddings().device());
}

torch::Tensor BertForSequenceClassificationImpl::pooled_features(const torch::Tensor& input_ids,
                                                                 const torch::Tensor& token_type_ids,
                                                                 const torch::Tensor& attention_mask) {
  torch::Tensor hidden;
  if (frozen_) {
    torch::NoGradGuard no_grad;
    hidden = encoder_->encode(input_ids, token_type_ids, attention_mask);
  } else {
    hidden = encoder_->encode(input_ids, token_type_ids, attention_mask);
  }
  return encoder_->pooled(hidden);
}

torch::Tensor BertForSequenceClassificationImpl::forward(const torch::Tensor& input_ids,
                                                         const torch::Tensor& token_type_ids,
                                                         const torch::Tensor& attention_mask) {
  torch::Tensor pooled = pooled_features(input_ids, token_type_ids, attention_mask);
  torch::Tensor logits = classifier_(hash_dropout(pooled, dropout_, is_training()));
  return logits.scalar_type() == torch::kFloat64 ? logits : logits.to(torch::kFloat32);
}

std::vector<torch::Tensor> BertForSequenceClassificationImpl::encoder_parameters() {
  std::vector<torch::Tensor> out;
  for (const auto& item : named_parameters()) {
    if (item.key().rfind("bert.embeddings.", 0) == 0 || item.key().rfind("bert.encoder.", 0) == 0) {
      out.push_back(item.value());
    }
  }
  return out;
}

void BertForSequenceClassificationImpl::freeze_encoder() {
  for (auto& p : encoder_parameters()) p.set_requires_grad(false);
  frozen_ = true;
  train(is_training());
}

void BertForSequenceClassificationImpl::train(bool on) {
  torch::nn::Module::train(on);
  encoder_->train(on);
  if (frozen_) {  // the pooler (bert.pooler) keeps `on`; embeddings and layers never drop out
    auto bert = encoder_->named_children()["bert"];
    for (const auto& child : bert->named_children()) {
      if (child.key() != "pooler") child.value()->train(false);
    }
  }
}

void BertForSequenceClassificationImpl::save_pretrained(const std::filesystem::path& dir,
                                                        const std::vector<std::string>& labels) {
  if (static_cast<int>(labels.size()) != num_labels_) {
    throw util::runtime_error("save_pretrained: " + std::to_string(labels.size()) + " label names for " +
                              std::to_string(num_labels_) + " outputs");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw util::io_error("cannot create " + dir.string() + ": " + ec.message());
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& item : named_parameters()) {
    tensors.emplace(item.key(), item.value().detach().to(torch::kCPU, torch::kFloat32).contiguous());
  }
  save_tensors(dir / "model.safetensors", tensors);
  nlohmann::json config = encoder_->config().to_hf_json();
  config["architectures"] = {"BertForSequenceClassification"};
  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (size_t i = 0; i < labels.size(); ++i) {
    id2label[std::to_string(i)] = labels[i];
    label2id[labels[i]] = static_cast<int>(i);
  }
  config["id2label"] = id2label;
  config["label2id"] = label2id;
  config["problem_type"] = "single_label_classification";
  util::write_file_atomic(dir / "config.json", config.dump(2) + "\n");
}

}  // namespace bert::model
