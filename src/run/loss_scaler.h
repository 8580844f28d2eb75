// fp16 dynamic loss scaling (as torch.amp.GradScaler): scale the loss up before backward, unscale
// the gradients, skip the update and halve the scale on overflow, double it after `growth_interval`
// clean steps. Its state (scale, clean-step count) is part of a checkpoint, so a resumed fp16 run
// continues with the scale it had instead of re-learning it from 65,536 through skipped steps.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace bert::run {

class LossScaler {
 public:
  // Disabled (every call a no-op) unless `enabled`; tensors live on `device`.
  LossScaler(bool enabled, const torch::Device& device, double initial_scale = 65536.0,
             int64_t growth_interval = 2000);

  bool enabled() const { return enabled_; }
  torch::Tensor apply(const torch::Tensor& loss) const;         // loss * scale
  // Divides every defined gradient by the scale and records whether any was inf/NaN.
  void unscale(const std::vector<torch::Tensor>& params);
  const torch::Tensor& found_inf() const { return found_inf_; }  // [] float: 1 after an overflow
  bool overflowed() const;
  void update();                                                // after the optimizer step
  double scale() const;

  // {"scale": 32768.0, "growth_tracker": 17}; null when disabled.
  nlohmann::json state() const;
  // Restores state(); null or a disabled scaler: nothing. Throws Error(kInput) naming `source` for a
  // malformed object (scale not a positive finite number, tracker not a non-negative integer).
  void restore(const nlohmann::json& state, const std::string& source);

 private:
  bool enabled_;
  int64_t growth_interval_;
  torch::Tensor scale_, growth_tracker_, found_inf_;  // [] float, [] int32, [] float on the device
};

}  // namespace bert::run
