// Mixed precision for the model: an RAII scope that turns on LibTorch autocast (bf16 on CPU,
// bf16/fp16 on CUDA) around a forward pass, as Python's `torch.autocast` does.
#pragma once

#include <ATen/autocast_mode.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace bert::model {

// Enables autocast for `device_type` with `dtype` (e.g. kCPU + kBFloat16) for its lifetime and
// restores the previous state after. On leaving the outermost scope it clears autocast's cache of
// cast weights -- without that, a later step would reuse bf16 copies of weights the optimizer has
// since updated. Use one scope per forward pass (the backward needs none). Not thread-safe across
// overlapping scopes in different threads for the cache (autocast state itself is thread-local).
class AutocastScope {
 public:
  AutocastScope(c10::DeviceType device_type, c10::ScalarType dtype)
      : device_type_(device_type),
        was_enabled_(at::autocast::is_autocast_enabled(device_type)),
        old_dtype_(at::autocast::get_autocast_dtype(device_type)) {
    at::autocast::set_autocast_dtype(device_type_, dtype);
    at::autocast::set_autocast_enabled(device_type_, true);
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device_type_, was_enabled_);
    at::autocast::set_autocast_dtype(device_type_, old_dtype_);
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType device_type_;
  bool was_enabled_;
  c10::ScalarType old_dtype_;
};

}  // namespace bert::model
