// AdamW with decay/no-decay groups on ATen's fused kernel.
#include "run/optimizer.h"

#include <cmath>

#include "util/error.h"

namespace bert::run {

AdamW::AdamW(torch::nn::Module& model, const TrainingOptions& t)
    : beta1_(t.adam_betas.at(0)), beta2_(t.adam_betas.at(1)), eps_(t.adam_eps) {
  groups_.resize(2);
  groups_[0].weight_decay = t.weight_decay;
  groups_[1].weight_decay = 0.0;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    const torch::Tensor& p = item.value();
    if (!p.requires_grad()) continue;
    const std::string& name = item.key();
    bool no_decay = (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0) ||
                    name.find("LayerNorm") != std::string::npos || name == "cls.predictions.bias";
    Group& g = groups_[no_decay ? 1 : 0];
    g.names.push_back(name);
    g.params.push_back(p);
    g.exp_avg.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    g.exp_avg_sq.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    g.steps.push_back(torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(p.device())));
  }
}

torch::Tensor global_grad_norm(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by_dtype;
  c10::optional<torch::Device> device;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    by_dtype[p.grad().scalar_type()].push_back(p.grad());
    device = p.grad().device();
  }
  if (by_dtype.empty()) return torch::zeros({}, torch::kFloat32);
  std::vector<torch::Tensor> norms;  // one fp32 norm per gradient
  for (auto& [dtype, grads] : by_dtype) {
    for (auto& n : at::_foreach_norm(grads, 2, torch::kFloat32)) norms.push_back(n);
  }
  return torch::linalg_vector_norm(torch::stack(norms), 2);  // [] fp32
}

torch::Tensor clip_divisor(const torch::Tensor& norm, double max_norm) {
  if (max_norm <= 0) return {};
  torch::NoGradGuard no_grad;
  const auto clip = torch::isfinite(norm) & (norm > max_norm);
  return torch::where(clip, (norm + 1e-6) / max_norm, torch::ones_like(norm));  // [] fp32
}

void AdamW::step(double lr, const std::optional<torch::Tensor>& grad_scale,
                 const std::optional<torch::Tensor>& found_inf) {
  torch::NoGradGuard no_grad;
  for (Group& g : groups_) {
    std::vector<torch::Tensor> params, grads, m, v, steps;
    for (size_t i = 0; i < g.params.size(); ++i) {
      const torch::Tensor& grad = g.params[i].grad();
      if (!grad.defined()) continue;
      params.push_back(g.params[i]);
      grads.push_back(grad);
      m.push_back(g.exp_avg[i]);
      v.push_back(g.exp_avg_sq[i]);
      steps.push_back(g.steps[i]);
    }
    if (params.empty()) continue;
    // The fused kernel reads the step count, it does not advance it. A skipped step (found_inf = 1)
    // must not advance the bias correction either: add 1 - found_inf, on the device.
    if (found_inf) {
      torch::_foreach_add_(steps, 1.0 - *found_inf);
    } else {
      torch::_foreach_add_(steps, 1);
    }
    at::_fused_adamw_(params, grads, m, v, /*max_exp_avg_sqs=*/{}, steps, lr, beta1_, beta2_,
                      g.weight_decay, eps_, /*amsgrad=*/false, /*maximize=*/false, grad_scale, found_inf);
  }
}

void AdamW::zero_grad() {
  for (Group& g : groups_) {
    for (auto& p : g.params) {
      if (p.grad().defined()) p.mutable_grad() = torch::Tensor();  // set_to_none, as PyTorch's default
    }
  }
}

std::vector<torch::Tensor> AdamW::parameters() const {
  std::vector<torch::Tensor> out;
  for (const Group& g : groups_) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

std::map<std::string, torch::Tensor> AdamW::state() const {
  std::map<std::string, torch::Tensor> out;
  for (const Group& g : groups_) {
    for (size_t i = 0; i < g.names.size(); ++i) {
      out[g.names[i] + ".exp_avg"] = g.exp_avg[i].detach().cpu().contiguous();
      out[g.names[i] + ".exp_avg_sq"] = g.exp_avg_sq[i].detach().cpu().contiguous();
      out[g.names[i] + ".step"] = g.steps[i].detach().cpu().reshape({1});
    }
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& state, const std::string& source) {
  torch::NoGradGuard no_grad;
  auto fetch = [&](const std::string& key, const torch::Tensor& like) {
    auto it = state.find(key);
    if (it == state.end()) {
      throw util::input_error(source + ": optimizer state has no tensor \"" + key +
                              "\"; the checkpoint was written for a different model");
    }
    if (it->second.numel() != like.numel()) {
      throw util::input_error(source + ": optimizer tensor \"" + key + "\" has " +
                              std::to_string(it->second.numel()) + " elements, expected " +
                              std::to_string(like.numel()));
    }
    return it->second.reshape(like.sizes()).to(like.device(), like.scalar_type());
  };
  for (Group& g : groups_) {
    for (size_t i = 0; i < g.names.size(); ++i) {
      g.exp_avg[i].copy_(fetch(g.names[i] + ".exp_avg", g.exp_avg[i]));
      g.exp_avg_sq[i].copy_(fetch(g.names[i] + ".exp_avg_sq", g.exp_avg_sq[i]));
      g.steps[i].copy_(fetch(g.names[i] + ".step", g.steps[i]));
    }
  }
  size_t expected = 0;
  for (const Group& g : groups_) expected += 3 * g.names.size();
  if (state.size() != expected) {
    throw util::input_error(source + ": optimizer state has " + std::to_string(state.size()) +
                            " tensors, expected " + std::to_string(expected) + "; the checkpoint was written for a different model");
  }
}

}  // namespace bert::run
