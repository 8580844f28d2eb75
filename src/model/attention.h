// Scaled dot-product attention for the encoder layers (internal to the model layer): LibTorch's
// fused kernel where it is the fastest, an unfused bf16-friendly path with hash dropout elsewhere.
#pragma once

#include <torch/torch.h>

#include <optional>

namespace bert::model {

// Scaled dot-product attention, softmax(q k^T / sqrt(d) + mask) v, with dropout p on the
// probabilities. q, k, v: [B, h, T, d]; key_mask: [B, 1, 1, T] bool (true = attend) or none.
// Returns [B, h, T, d].
//   On CPU, the fused kernel (at::scaled_dot_product_attention) is used only for fp32 without
//   dropout: with dropout it falls back to an fp32 "math" path with bernoulli_ masks, and in bf16 it
//   is slower than three bf16 ops (measured, bert-mini shapes: 29 ms fused vs 10.5 ms unfused per
//   forward+backward). Elsewhere the unfused path (bmm, softmax, hash_dropout, bmm) runs in the
//   inputs' dtype. On CUDA the fused kernel is always used.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const std::optional<torch::Tensor>& key_mask, double p, bool training);

// The unfused path, for tests (parity with the fused kernel).
torch::Tensor attention_unfused(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const std::optional<torch::Tensor>& key_mask, double p, bool training);

}  // namespace bert::model
