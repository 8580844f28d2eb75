// Dropout for the training path (internal to the model layer).
//
// torch's CPU dropout draws each element with bernoulli_ (~6 ns per element here: ~15% of a bf16
// bert-mini step) and stores the mask for the backward. hash_dropout decides element i by a
// counter-based hash of (key, i): ~0.5 ns per element on 2 threads, and the backward recomputes the
// mask from the key instead of keeping it. The key is drawn from torch's default CPU generator, so
// the trainer's per-step reseeding keeps runs reproducible and resumable bit for bit.
#pragma once

#include <torch/torch.h>

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

}  // namespace bert::model
