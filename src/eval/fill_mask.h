// Fill-mask: the model's top-k candidates, with probabilities, for each [MASK] in a text, tokenized
// with the model's own vocabulary and settings as [CLS] pieces [SEP].
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>
#include <string_view>
#include <vector>

#include "eval/checkpoint_loader.h"
#include "wordpiece/tokenizer.h"

namespace bert::eval {

struct MaskCandidate {
  int32_t id = 0;
  std::string token;
  double probability = 0;  // softmax over the whole vocabulary at that position
};

struct MaskPrediction {
  int position = 0;                       // index in input_ids ([CLS] is 0)
  std::vector<MaskCandidate> candidates;  // best first
};

struct FillMaskResult {
  std::string text;
  std::vector<int32_t> input_ids;         // [CLS] ... [SEP]
  std::vector<MaskPrediction> masks;      // in text order
  nlohmann::json to_json() const;
  // Readable: the text, then per mask "rank  probability  token" lines.
  std::string format() const;
};

// [CLS] + ids + [SEP], with every literal occurrence of the vocabulary's mask token ("[MASK]") in
// `text` encoded as the mask id -- the tokenizer itself would split "[MASK]" into pieces, so the text
// is cut at each occurrence and the pieces are encoded separately (as transformers does with its
// special tokens). Throws Error(kUsage) when the text holds no mask token.
std::vector<int32_t> encode_with_masks(const wordpiece::Tokenizer& tokenizer, std::string_view text);

class FillMask {
 public:
  // `model` must outlive this object. `precision`: autocast for the forward ("fp32" | "bf16" |
  // "fp16" on CUDA); probabilities are computed in fp32 either way.
  FillMask(LoadedModel& model, const torch::Device& device, const std::string& precision = "fp32");

  // Top-k (1 <= k <= vocab size) candidates for each mask of `text`. Throws Error(kUsage) when the
  // text has no mask or is longer than the model's max_position_embeddings.
  FillMaskResult predict(const std::string& text, int top_k) const;

 private:
  LoadedModel& model_;
  torch::Device device_;
  std::string precision_;
  wordpiece::Tokenizer tokenizer_;
};

}  // namespace bert::eval
