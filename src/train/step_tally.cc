// The training loop's device-side tally.
#include "train/step_tally.h"

namespace bert::train {

DeviceTally::DeviceTally(const torch::Device& device)
    : window_(torch::zeros({kWindowFields}, torch::TensorOptions().dtype(torch::kFloat64).device(device))),
      guard_(torch::zeros({kGuardFields}, window_.options())) {}

void DeviceTally::add(const StepResult& r) {
  torch::NoGradGuard no_grad;
  const auto finite = torch::isfinite(r.loss);
  const auto zero = torch::zeros_like(r.loss);
  window_.add_(torch::stack({torch::where(finite, r.loss, zero), torch::where(finite, r.mlm_loss, zero),
                             torch::where(finite, r.nsp_loss, zero), finite.to(torch::kFloat32),
                             torch::where(torch::isfinite(r.grad_norm), r.grad_norm, zero),
                             r.correct.to(torch::kFloat32)})
                   .to(torch::kFloat64));
  // [nonfinite total, skipped total, current streak of nonfinite steps, longest streak]
  const auto bad = r.nonfinite.to(torch::kFloat64);
  auto streak = (guard_[2] + bad) * bad;
  guard_.copy_(torch::stack({guard_[0] + bad, guard_[1] + r.skipped.to(torch::kFloat64), streak,
                             torch::maximum(guard_[3], streak)}));
}

DeviceTally::Read DeviceTally::read() const {
  const auto host = torch::cat({window_, guard_}).cpu();
  const double* v = host.data_ptr<double>();
  return {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]};
}

}  // namespace bert::train
