// Device selection and numeric precision: turns runtime.device / training.precision into a torch
// device and an autocast scope, with clear errors when the hardware is missing.
#pragma once

#include <torch/torch.h>

#include <string>

namespace bert::train {

// "auto" -> cuda:0 when a GPU is visible, else cpu; "cuda"/"cuda:N" without a GPU (or N out of
// range) -> Error(kUsage) saying what is visible and what to set instead.
torch::Device resolve_device(const std::string& name);
// Human-readable description ("cpu (2 threads)", "cuda:0 (NVIDIA H100 ...)").
std::string describe_device(const torch::Device& device);

// Enables autocast for `precision` ("bf16" / "fp16") on `device` for the object's lifetime; "fp32"
// does nothing. Restores the previous state on destruction.
class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, const std::string& precision);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType type_;
  bool enabled_ = false;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_;
};

}  // namespace bert::train
