// Device selection and numeric precision: turns runtime.device / training.precision into a torch
// device and an autocast scope, with clear errors when the hardware is missing.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>

#include "model/autocast.h"

namespace bert::run {

// "auto" -> cuda:0 when a GPU is visible, else cpu; "cuda"/"cuda:N" without a GPU (or N out of
// range) -> Error(kUsage) saying what is visible and what to set instead.
torch::Device resolve_device(const std::string& name);
// Human-readable description ("cpu (2 threads)", "cuda:0 (NVIDIA H100 ...)").
std::string describe_device(const torch::Device& device);

// Sets what this process's CUDA math may use: TF32 tensor cores for fp32 matmuls and convolutions
// (`tf32`; torch's default is off) and the fused-attention kernels (model::set_attention_backend).
// Global, so call it once at start; it changes nothing on the CPU. Throws Error(kUsage) for an
// unknown backend name.
void configure_cuda_math(bool tf32, const std::string& attention_backend);

// One line for the log: the attention kernel a model with `heads` heads of `head_dim` runs on
// `device` at `precision` for batches of `batch` x `seq`, without and with padding (e.g. "attention:
// flash (no padding), efficient (padding)"). Allocates a small tensor on the device.
std::string describe_attention(const torch::Device& device, const std::string& precision, int64_t batch,
                               int64_t seq, int64_t heads, int64_t head_dim, double dropout);

// True when this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16). Without it, LibTorch's bf16
// matmul falls back to a scalar loop: 0.9 vs 161 GFLOP/s for fp32 on an AVX2 EPYC (measured).
bool cpu_has_native_bf16();

// training.precision as it will run on `device`: "auto" -> "bf16" on CUDA and on a CPU with native
// bf16, else "fp32"; other values unchanged. "fp16" off CUDA: Error(kUsage) naming `key`. An explicit
// "bf16" on a CPU without native bf16 runs, with a warning saying how much slower it is.
std::string resolve_precision(const std::string& requested, const torch::Device& device, const std::string& key);

// Enables autocast for `precision` ("bf16" / "fp16") on `device` for the object's lifetime, via the
// model layer's AutocastScope; "fp32" does nothing. fp16 off CUDA is Error(kUsage).
class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, const std::string& precision);

 private:
  std::optional<model::AutocastScope> scope_;
};

}  // namespace bert::run
