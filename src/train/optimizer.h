// AdamW over the model's parameters in two groups (decay / no decay: biases and LayerNorm never
// decay), stepped with ATen's fused multi-tensor kernel. Its state is a flat set of named tensors so
// a checkpoint can store it in a safetensors file and a resumed run continues bit-identically.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "train/config.h"

namespace bert::train {

class AdamW {
 public:
  // Collects every parameter of `model` that requires grad. Names ending in ".bias" or containing
  // "LayerNorm" go to the no-decay group.
  AdamW(torch::nn::Module& model, const TrainingOptions& options);

  // One update with learning rate `lr`. Parameters whose grad is undefined are left alone.
  // `grad_scale`/`found_inf` (fp16 on CUDA): grads are divided by grad_scale and the step is skipped
  // on the device when found_inf != 0.
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

}  // namespace bert::train
