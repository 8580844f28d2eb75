// AdamW over the model's parameters in two groups (decay / no decay: biases and LayerNorm never
// decay), stepped with ATen's fused multi-tensor kernel. Its state is a flat set of named tensors so
// a checkpoint can store it in a safetensors file and a resumed run continues bit-identically.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "run/config.h"

namespace bert::run {

// The global L2 norm of the defined gradients of `params` (what clip_grad_norm_ computes): a []
// fp32 tensor on their device (zero when no gradient is defined), from one _foreach_norm launch per
// gradient dtype. No host read: the training step keeps it on the device.
torch::Tensor global_grad_norm(const std::vector<torch::Tensor>& params);

// Gradient clipping as a divisor for AdamW::step's grad_scale, computed on the device from `norm`
// ([] fp32): (norm + 1e-6) / max_norm where the norm is finite and exceeds max_norm (torch's
// clip_grad_norm_ multiplies by the inverse), else exactly 1 (a no-op divisor). Undefined when
// max_norm <= 0 (clipping off). Folding it into the fused update saves a read-write pass over every
// gradient (~4% of a bert-mini step here) and a host read of the norm.
torch::Tensor clip_divisor(const torch::Tensor& norm, double max_norm);

class AdamW {
 public:
  // Collects every parameter of `model` that requires grad. Names ending in ".bias" or containing
  // "LayerNorm" go to the no-decay group.
  AdamW(torch::nn::Module& model, const TrainingOptions& options);

  // One update with learning rate `lr`. Parameters whose grad is undefined are left alone.
  // `grad_scale`: [] fp32, grads are divided by it (gradient clipping); `found_inf`: [] fp32, 0 or 1,
  // the update is skipped on the device when it is 1 (fp16 overflow, NaN guard), step counts included.
  void step(double lr, const std::optional<torch::Tensor>& grad_scale = std::nullopt,
            const std::optional<torch::Tensor>& found_inf = std::nullopt);
  void zero_grad();
  // All parameters (both groups), in a fixed order.
  std::vector<torch::Tensor> parameters() const;

  // "<param>.exp_avg", "<param>.exp_avg_sq", "<param>.step" for every parameter (CPU copies).
  std::map<std::string, torch::Tensor> state() const;
  // Restores state() output. Throws Error(kInput) naming the key on a missing or mis-shaped tensor.
  void load_state(const std::map<std::string, torch::Tensor>& state, const std::string& source);

 private:
  struct Group {
    double weight_decay = 0;
    std::vector<std::string> names;
    std::vector<torch::Tensor> params, exp_avg, exp_avg_sq, steps;
  };
  std::vector<Group> groups_;
  double beta1_, beta2_, eps_;
};

}  // namespace bert::run
