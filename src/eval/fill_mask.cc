// Fill-mask prediction: encode around literal mask tokens, one forward pass, full-vocabulary softmax.
#include "eval/fill_mask.h"

#include "run/device.h"

#include <cstdio>

#include "util/error.h"

namespace bert::eval {

std::vector<int32_t> encode_with_masks(const wordpiece::Tokenizer& tokenizer, std::string_view text) {
  const wordpiece::Vocab& vocab = tokenizer.vocab();
  const std::string& mask = vocab.config().mask_token;
  std::vector<int32_t> ids = {vocab.cls_id()};
  size_t masks = 0, from = 0;
  for (size_t at; (at = text.find(mask, from)) != std::string_view::npos; from = at + mask.size()) {
    tokenizer.encode_ids(text.substr(from, at - from), ids);
    ids.push_back(vocab.mask_id());
    ++masks;
  }
  tokenizer.encode_ids(text.substr(from), ids);
  ids.push_back(vocab.sep_id());
  if (masks == 0) {
    throw util::usage_error("the text has no " + mask + " token to fill: \"" + std::string(text) +
                            "\"; write " + mask + " where a word should be predicted");
  }
  return ids;
}

FillMask::FillMask(LoadedModel& model, const torch::Device& device, const std::string& precision)
    : model_(model), device_(device), precision_(precision), tokenizer_(model.vocab) {}

FillMaskResult FillMask::predict(const std::string& text, int top_k) const {
  const wordpiece::Vocab& vocab = *model_.vocab;
  if (top_k < 1 || top_k > vocab.size()) {
    throw util::usage_error("top-k must be in [1, " + std::to_string(vocab.size()) + "], got " + std::to_string(top_k));
  }
  FillMaskResult r;
  r.text = text;
  r.input_ids = encode_with_masks(tokenizer_, text);
  const int64_t t = static_cast<int64_t>(r.input_ids.size());
  const int max_positions = model_.model->config().max_position_embeddings;
  if (t > max_positions) {
    throw util::usage_error("the text is " + std::to_string(t) + " tokens long with [CLS] and [SEP]; the model "
                            "takes at most " + std::to_string(max_positions));
  }
  torch::InferenceMode inference;
  model_.model->eval();
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  torch::Tensor ids = torch::tensor(std::vector<int64_t>(r.input_ids.begin(), r.input_ids.end()), opts)
                          .view({1, t}).to(device_);                         // [1, T]
  torch::Tensor types = torch::zeros({1, t}, opts.device(device_));          // [1, T]
  torch::Tensor attention = torch::ones({1, t}, opts.device(device_));       // [1, T]
  torch::Tensor logits;
  {
    run::AutocastScope autocast(device_, precision_);
    logits = model_.model->logits(ids, types, attention).first;  // [1, T, V] fp32
  }
  torch::Tensor positions = ids[0].eq(vocab.mask_id()).nonzero().view(-1);   // [M]
  torch::Tensor probs = logits[0].index_select(0, positions).softmax(-1);    // [M, V]
  auto [best_p, best_id] = probs.topk(top_k, -1);                            // [M, k] each
  best_p = best_p.to(torch::kCPU, torch::kFloat64);
  best_id = best_id.to(torch::kCPU);
  positions = positions.to(torch::kCPU);
  for (int64_t m = 0; m < positions.size(0); ++m) {
    MaskPrediction p;
    p.position = static_cast<int>(positions[m].item<int64_t>());
    for (int k = 0; k < top_k; ++k) {
      MaskCandidate c;
      c.id = static_cast<int32_t>(best_id[m][k].item<int64_t>());
      c.token = vocab.token(c.id);
      c.probability = best_p[m][k].item<double>();
      p.candidates.push_back(std::move(c));
    }
    r.masks.push_back(std::move(p));
  }
  return r;
}

nlohmann::json FillMaskResult::to_json() const {
  nlohmann::json j = {{"text", text}, {"input_ids", input_ids}, {"masks", nlohmann::json::array()}};
  for (const auto& m : masks) {
    nlohmann::json c = nlohmann::json::array();
    for (const auto& x : m.candidates) c.push_back({{"token", x.token}, {"id", x.id}, {"probability", x.probability}});
    j["masks"].push_back({{"position", m.position}, {"candidates", c}});
  }
  return j;
}

std::string FillMaskResult::format() const {
  std::string out = text + "\n";
  for (size_t i = 0; i < masks.size(); ++i) {
    if (masks.size() > 1) out += "  mask " + std::to_string(i + 1) + " of " + std::to_string(masks.size()) + ":\n";
    for (size_t k = 0; k < masks[i].candidates.size(); ++k) {
      const MaskCandidate& c = masks[i].candidates[k];
      char buf[64];
      std::snprintf(buf, sizeof buf, "  %2zu  %.4f  ", k + 1, c.probability);
      out += buf + c.token + "\n";
    }
  }
  return out;
}

}  // namespace bert::eval
