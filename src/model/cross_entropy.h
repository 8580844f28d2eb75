// Fused softmax cross-entropy for the MLM head (internal to the model layer).
//
// torch's cross_entropy on [N, V] logits runs log_softmax, nll_loss, a zero-filled [N, V] gradient,
// log_softmax_backward and, under bf16 autocast, two dtype copies of the logits: ~15% of a bf16
// bert-mini step at V = 30,522. This is one pass for the loss (row max and sum of exponentials in
// fp32, whatever the logits' dtype) and one pass for the gradient, written in the logits' dtype.
#pragma once

#include <torch/torch.h>

namespace bert::model {

// Mean over rows with target != ignore_index of logsumexp(logits[r]) - logits[r][target[r]],
// computed in fp32 (fp64 for double logits); NaN when every target is ignored, as torch's mean.
// logits: [N, V] fp32/bf16/fp16/fp64 on the CPU (other devices use torch's cross_entropy);
// targets: [N] int64. Throws Error(kInput) for a target outside [0, V) that is not ignore_index.
// Differentiable with respect to logits; returns a [] fp32 (fp64 for double) tensor.
torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                            int64_t ignore_index = -100);

// e^x over a float array with the kernel's vector exp (AVX-512) where the CPU has it, else
// std::exp: exposed so tests can bound its error against std::exp.
void exp_floats(const float* in, float* out, int64_t n);

}  // namespace bert::model
