// The sync-free training step.
#include "train/train_step.h"

#include "run/device.h"
#include "train/distributed.h"
#include "util/error.h"

namespace bert::train {

StepResult train_step(model::BertForPreTraining& model, run::AdamW& optimizer, run::LossScaler& scaler,
                      const std::vector<data::Batch>& micro_batches, double lr, const StepOptions& o,
                      int64_t global_predictions) {
  if (micro_batches.empty()) throw util::runtime_error("train_step: no micro-batch given");
  const torch::Device device = micro_batches.front().input_ids.device();
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  StepResult r;
  r.loss = torch::zeros({}, f32);
  r.mlm_loss = torch::zeros({}, f32);
  r.nsp_loss = torch::zeros({}, f32);
  r.correct = torch::zeros({}, f32.dtype(torch::kInt64));
  const double inv_micro = 1.0 / static_cast<double>(micro_batches.size());
  // The MLM loss is a mean over predicted tokens, and micro-batches (and ranks) predict different
  // numbers of them: weighting micro-batch i by N_i * world / N_total makes the averaged gradient the
  // gradient of the mean over all N_total predicted tokens of the step -- the same as one process
  // with one batch of all the rows. (With one micro-batch on one process the weight is exactly 1.)
  int64_t local_predictions = 0;
  for (const data::Batch& b : micro_batches) local_predictions += b.num_predictions;
  const double world = o.dist != nullptr ? static_cast<double>(o.dist->world_size()) : 1.0;
  const double total = global_predictions > 0 ? static_cast<double>(global_predictions)
                                              : static_cast<double>(local_predictions);

  if ((o.dist == nullptr) != (o.sync == nullptr)) throw util::runtime_error("train_step: dist and sync go together");
  optimizer.zero_grad();
  for (const data::Batch& batch : micro_batches) {
    if (o.sync != nullptr && &batch == &micro_batches.back()) o.sync->arm();
    model::PretrainingOutput out;
    {
      run::AutocastScope autocast(device, o.precision);
      out = model->forward(run::model_inputs(batch));
    }
    const double w_mlm = total > 0 ? static_cast<double>(batch.num_predictions) * world / total : 0.0;
    torch::Tensor objective = out.mlm_loss * w_mlm;
    if (out.nsp_loss.defined()) objective = objective + out.nsp_loss * inv_micro;  // equal rows per batch
    scaler.apply(objective).backward();
    torch::NoGradGuard no_grad;
    const auto mlm = out.mlm_loss.detach().to(torch::kFloat32) * w_mlm;
    r.mlm_loss.add_(mlm);
    r.loss.add_(mlm);
    if (out.nsp_loss.defined()) {
      r.nsp_loss.add_(out.nsp_loss.detach().to(torch::kFloat32), inv_micro);
      r.loss.add_(out.nsp_loss.detach().to(torch::kFloat32), inv_micro);
    }
    r.correct.add_(out.mlm_logits.detach().argmax(-1).eq(out.mlm_targets).sum());
  }

  torch::NoGradGuard no_grad;
  const std::vector<torch::Tensor> params = optimizer.parameters();
  if (o.dist != nullptr) {
    r.sync = o.sync->finish();
    torch::Tensor figures = torch::stack({r.loss, r.mlm_loss, r.nsp_loss, r.correct.to(torch::kFloat32)});  // [4]
    o.dist->sum_(figures);
    const double world = o.dist->world_size();
    r.loss = figures[0] / world;
    r.mlm_loss = figures[1] / world;
    r.nsp_loss = figures[2] / world;
    r.correct = figures[3].round().to(torch::kInt64);
  }
  scaler.unscale(params);
  r.grad_norm = run::global_grad_norm(params).to(device);
  // The NaN/Inf guard: a non-finite loss, or (outside fp16, where the scaler handles overflows by
  // design) a non-finite gradient norm, skips the update on the device.
  r.nonfinite = torch::isfinite(r.loss).logical_not();
  if (!scaler.enabled()) r.nonfinite = r.nonfinite | torch::isfinite(r.grad_norm).logical_not();
  r.nonfinite = r.nonfinite.to(torch::kFloat32);
  r.skipped = scaler.enabled() ? torch::maximum(r.nonfinite, scaler.found_inf()) : r.nonfinite;
  const torch::Tensor divisor = run::clip_divisor(r.grad_norm, o.clip_grad_norm);
  optimizer.step(lr, divisor.defined() ? std::optional<torch::Tensor>(divisor) : std::nullopt, r.skipped);
  scaler.update();
  return r;
}

}  // namespace bert::train
