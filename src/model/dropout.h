// Dropout and attention kernels for the training path (internal to the model layer).
//
// torch's CPU dropout draws each element with bernoulli_ (~6 ns per element here: ~15% of a bf16
// bert-mini step) and stores the mask for the backward. hash_dropout decides element i by a
// counter-based hash of (key, i): ~0.5 ns per element on 2 threads, and the backward recomputes the
// mask from the key instead of keeping it. The key is drawn from torch's default CPU generator, so
// the trainer's per-step reseeding keeps runs reproducible and resumable bit for bit.
#pragma once

#include <torch/torch.h>

#include <optional>

namespace bert::model {

// Returns x with each element zeroed with probability p and the others scaled by 1 / (1 - p);
// x itself when !training or p == 0. CPU tensors (fp32, fp64, bf16, fp16) use the hash kernel;
// other devices use torch::dropout (CUDA's is already fused).
torch::Tensor hash_dropout(const torch::Tensor& x, double p, bool training);

// The mask kernel itself, exposed for tests: out[i] = keep(key, i) ? x[i] / (1 - p) : 0 over x's
// elements in row-major order, keep(key, i) true with probability 1 - p (to 2^-32): with
// w = splitmix64_mix(key + (i / 2) * 0x9e3779b97f4a7c15), element i is kept when the low (even i) or
// high (odd i) 32 bits of w are >= round(p * 2^32). `vector` = false forces the scalar code (the
// AVX-512 kernel, used where the CPU has it, gives the same bits).
torch::Tensor hash_dropout_apply(const torch::Tensor& x, double p, uint64_t key, bool vector = true);

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
