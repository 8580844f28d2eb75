// BertForPreTraining: assembles the HF name tree, initialises weights, computes the pre-training
// losses with the MLM head applied only at predicted positions.
#include "model/bert_model.h"

#include "model/cross_entropy.h"
#include "model/layers.h"
#include "model/local_init.h"
#include "util/error.h"

namespace bert::model {

namespace nn = torch::nn;

namespace {
constexpr int64_t kIgnoreIndex = -100;

// Logits for a loss: at least fp32 (autocast leaves them bf16/fp16), double stays double.
torch::Tensor at_least_fp32(const torch::Tensor& t) {
  return c10::elementSize(t.scalar_type()) < 4 ? t.to(torch::kFloat32) : t;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// [B, T] attention mask (1 = real token) -> [B, 1, 1, T] bool key mask for the attention.
torch::Tensor key_mask_of(const torch::Tensor& attention_mask) {
  return attention_mask.to(torch::kBool).view({attention_mask.size(0), 1, 1, attention_mask.size(1)});
}

void check_2d(const torch::Tensor& t, const char* name, int64_t batch, int64_t seq) {
  if (!t.defined()) return;
  if (t.dim() != 2 || t.size(0) != batch || t.size(1) != seq) {
    throw util::input_error(std::string("BertForPreTraining: ") + name + " must be [" +
                            std::to_string(batch) + ", " + std::to_string(seq) + "], got " +
                            c10::str(t.sizes()));
  }
}
}  // namespace

BertForPreTrainingImpl::BertForPreTrainingImpl(const BertConfig& config, uint64_t init_seed)
    : config_(config) {
  config_.validate();
  // bert.{embeddings, encoder.layer.N, [encoder.LayerNorm], pooler.dense}
  auto bert = add_node(*this, "bert");
  embeddings_ = bert->register_module("embeddings", std::make_shared<EmbeddingsImpl>(config_));
  auto encoder = add_node(*bert, "encoder");
  auto layer_list = encoder->register_module("layer", nn::ModuleList());
  for (int i = 0; i < config_.num_layers; ++i) {
    layers_.push_back(std::make_shared<EncoderLayerImpl>(config_));
    layer_list->push_back(layers_.back());
  }
  if (config_.norm == "pre") {
    final_norm_ = encoder->register_module(
        "LayerNorm", nn::LayerNorm(nn::LayerNormOptions({config_.hidden_size}).eps(config_.layer_norm_eps)));
  }
  pooler_ = add_node(*bert, "pooler")->register_module("dense",
                                                       nn::Linear(config_.hidden_size, config_.hidden_size));
  // cls.{predictions.{bias, transform.*}, seq_relationship}
  auto cls = add_node(*this, "cls");
  mlm_head_ = cls->register_module("predictions", std::make_shared<MlmHeadImpl>(config_));
  seq_relationship_ = cls->register_module("seq_relationship", nn::Linear(config_.hidden_size, 2));
  init_weights(init_seed);
}

void BertForPreTrainingImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const std::string word = "bert.embeddings.word_embeddings.weight";
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (ends_with(name, "LayerNorm.weight")) {
      p.fill_(1.0);
    } else if (ends_with(name, "bias")) {
      p.zero_();
    } else {
      // fp32 draws on the CPU, so the weights do not depend on the parameter's device or dtype.
      auto w = torch::empty(p.sizes(), torch::kFloat32).normal_(0.0, config_.initializer_range, gen);
      if (name == word) w[config_.pad_token_id].zero_();
      p.copy_(w);
    }
  }
  if (config_.init == "local") {
    auto params = named_parameters();
    const std::string self = "bert.encoder.layer.0.attention.self.";
    std::vector<LocalLayer> more;  // every later layer too, on the offsets that follow
    for (int l = 1; l < config_.num_layers; ++l) {
      const std::string s = "bert.encoder.layer." + std::to_string(l) + ".attention.self.";
      more.push_back({params[s + "query.weight"], params[s + "query.bias"], params[s + "key.weight"], params[s + "key.bias"]});
    }
    apply_local_init(params["bert.embeddings.position_embeddings.weight"], params[self + "query.weight"],
                     params[self + "query.bias"], params[self + "key.weight"], params[self + "key.bias"], config_, gen,
                     more);
  }
}

const torch::Tensor& BertForPreTrainingImpl::word_embeddings() const {
  return embeddings_->word_embeddings->weight;
}

torch::Tensor BertForPreTrainingImpl::encode(const torch::Tensor& input_ids,
                                             const torch::Tensor& token_type_ids,
                                             const torch::Tensor& attention_mask) {
  if (input_ids.dim() == 2) check_2d(attention_mask, "attention_mask", input_ids.size(0), input_ids.size(1));
  // Without padding, pass no mask: SDPA then may pick its fastest kernel (flash on CUDA).
  torch::Tensor key_mask;
  if (attention_mask.defined() && !attention_mask.to(torch::kBool).all().item<bool>()) {
    key_mask = key_mask_of(attention_mask);
  }
  return encode_with_key_mask(input_ids, token_type_ids, key_mask);
}

torch::Tensor BertForPreTrainingImpl::encode_with_key_mask(const torch::Tensor& input_ids,
                                                           const torch::Tensor& token_type_ids,
                                                           const torch::Tensor& key_mask) {
  if (input_ids.dim() != 2) {
    throw util::input_error("BertForPreTraining: input_ids must be [B, T], got " +
                            c10::str(input_ids.sizes()));
  }
  const int64_t batch = input_ids.size(0), seq = input_ids.size(1);
  check_2d(token_type_ids, "token_type_ids", batch, seq);
  auto x = embeddings_->forward(input_ids, token_type_ids);  // [B, T, H]
  for (auto& layer : layers_) x = layer->forward(x, key_mask);  // [B, T, H]
  if (final_norm_) x = final_norm_(x);
  return x;
}

torch::Tensor BertForPreTrainingImpl::pooled(const torch::Tensor& hidden) {
  return torch::tanh(pooler_(hidden.select(1, 0)));  // [B, H] from [CLS]
}

torch::Tensor BertForPreTrainingImpl::nsp_head(const torch::Tensor& hidden) {
  return seq_relationship_(pooled(hidden));  // [B, 2]
}

PretrainingOutput BertForPreTrainingImpl::forward(const torch::Tensor& input_ids,
                                                  const torch::Tensor& token_type_ids,
                                                  const torch::Tensor& attention_mask,
                                                  const torch::Tensor& mlm_labels,
                                                  const torch::Tensor& nsp_labels) {
  PretrainingInputs in;
  in.input_ids = input_ids;
  in.token_type_ids = token_type_ids;
  in.attention_mask = attention_mask;
  in.mlm_labels = mlm_labels;
  in.nsp_labels = nsp_labels;
  return forward(in);
}

PretrainingOutput BertForPreTrainingImpl::forward(const PretrainingInputs& in) {
  if (in.input_ids.dim() != 2) {
    throw util::input_error("BertForPreTraining: input_ids must be [B, T], got " + c10::str(in.input_ids.sizes()));
  }
  const int64_t batch = in.input_ids.size(0), seq = in.input_ids.size(1);
  check_2d(in.attention_mask, "attention_mask", batch, seq);
  check_2d(in.mlm_labels, "mlm_labels", batch, seq);
  if (!in.mlm_labels.defined()) throw util::input_error("BertForPreTraining: mlm_labels are required");
  if (in.nsp_labels.defined() && (in.nsp_labels.dim() != 1 || in.nsp_labels.size(0) != batch)) {
    throw util::input_error("BertForPreTraining: nsp_labels must be [" + std::to_string(batch) + "], got " +
                            c10::str(in.nsp_labels.sizes()));
  }
  // Host facts the caller did not give are derived here; each derivation is a device read on CUDA.
  const bool has_padding = !in.attention_mask.defined() ? false
                           : in.has_padding           ? *in.has_padding
                                                      : !in.attention_mask.to(torch::kBool).all().item<bool>();
  const bool has_nsp = !in.nsp_labels.defined() ? false
                       : in.has_nsp           ? *in.has_nsp
                                              : (in.nsp_labels != kIgnoreIndex).any().item<bool>();
  const auto flat_labels = in.mlm_labels.reshape({-1});  // [B*T]
  const auto index = in.mlm_positions.defined() ? in.mlm_positions
                                                : (flat_labels != kIgnoreIndex).nonzero().squeeze(1);  // [N]

  // Without padding no mask is passed: SDPA then may pick its fastest kernel (flash on CUDA).
  auto hidden = encode_with_key_mask(in.input_ids, in.token_type_ids,
                                     has_padding ? key_mask_of(in.attention_mask) : torch::Tensor());  // [B, T, H]
  const int64_t width = hidden.size(2);

  PretrainingOutput out;
  // Gather the N predicted positions before the head: the [H] -> [V] projection is most of a small
  // model's FLOPs, and only ~15% of tokens need it.
  const auto picked = hidden.reshape({batch * seq, width}).index_select(0, index);  // [N, H]
  out.mlm_targets = flat_labels.index_select(0, index);                       // [N]
  // Logits stay in the compute dtype (bf16 under autocast): the fused loss reads them in fp32 and
  // writes their gradient in their own dtype, with no [N, V] fp32 copy either way.
  out.mlm_logits = mlm_head_->forward(picked, decoder_alias_.defined() ? decoder_alias_ : word_embeddings());  // [N, V]
  if (index.size(0) > 0) {
    out.mlm_loss = model::cross_entropy(out.mlm_logits, out.mlm_targets);     // [] fp32
  } else {
    out.mlm_loss = at_least_fp32(out.mlm_logits.sum() * 0.0);  // [] zero fp32, keeps the graph consistent
  }
  out.loss = out.mlm_loss;

  if (has_nsp) {
    out.nsp_logits = at_least_fp32(nsp_head(hidden));                        // [B, 2]
    out.nsp_loss = torch::cross_entropy_loss(out.nsp_logits, in.nsp_labels);  // []
    out.loss = out.loss + out.nsp_loss;
  }
  return out;
}

std::pair<torch::Tensor, torch::Tensor> BertForPreTrainingImpl::logits(
    const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
    const torch::Tensor& attention_mask) {
  auto hidden = encode(input_ids, token_type_ids, attention_mask);              // [B, T, H]
  auto mlm = at_least_fp32(mlm_head_->forward(hidden, word_embeddings()));  // [B, T, V]
  auto nsp = at_least_fp32(nsp_head(hidden));                                     // [B, 2]
  return {mlm, nsp};
}

}  // namespace bert::model
