// Device selection and numeric precision: turns runtime.device / training.precision into a torch
// device and an autocast scope, with clear errors when the hardware is missing.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>

#include "model/autocast.h"

namespace bert::train {

// "auto" -> cuda:0 when a GPU is visible, else cpu; "cuda"/"cuda:N" without a GPU (or N out of
// range) -> Error(kUsage) saying what is visible and what to set instead.
torch::Device resolve_device(const std::string& name);
// Human-readable description ("cpu (2 threads)", "cuda:0 (NVIDIA H100 ...)").
std::string describe_device(const torch::Device& device);

// Enables autocast for `precision` ("bf16" / "fp16") on `device` for the object's lifetime, via the
// model layer's AutocastScope; "fp32" does nothing. fp16 off CUDA is Error(kUsage).
class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, const std::string& precision);

 private:
  std::optional<model::AutocastScope> scope_;
};

}  // namespace bert::train
