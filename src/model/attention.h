// Scaled dot-product attention for the encoder layers (internal to the model layer): LibTorch's
// fused kernel where it is the fastest, an unfused bf16-friendly path with hash dropout elsewhere.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>

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

// Which kernels LibTorch's fused attention may use on CUDA (process-wide: torch's global context).
// "auto": flash, else memory-efficient, else math; cuDNN is left out (non-deterministic, with open
// reports of NaN gradients under masks at some lengths). "flash": flash where it can run, and
// memory-efficient for batches with padding (flash takes no mask). "efficient" | "cudnn" | "math":
// that kernel only; a forward it cannot run then fails with torch's "no available kernel" message.
// No effect on the CPU path. Throws Error(kUsage) for another name.
void set_attention_backend(const std::string& name);

// The kernel attention() runs for inputs shaped and typed like q ([B, h, T, d]) with or without a
// key mask, under the current backend setting: "flash", "efficient", "cudnn", "math" on CUDA (what
// SDPA picks; "none" if no allowed kernel can run them), "cpu-fused" or "cpu-unfused" on the CPU.
std::string attention_kernel_name(const torch::Tensor& q, bool with_key_mask, double p, bool training);

// The unfused path, for tests (parity with the fused kernel).
torch::Tensor attention_unfused(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const std::optional<torch::Tensor>& key_mask, double p, bool training);

}  // namespace bert::model
