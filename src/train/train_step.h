// One optimizer step on the device -- forward and backward over the micro-batches, the gradient
// norm, clipping, the NaN/Inf guard and AdamW -- with no host-device synchronisation: what it
// reports stays in device tensors until the caller reads them (when it logs or saves).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "data/batch.h"
#include "model/bert_model.h"
#include "train/grad_sync.h"
#include "run/loss_scaler.h"
#include "run/mlm_metrics.h"
#include "run/optimizer.h"

namespace bert::train {

// What one step measured, each a [] tensor on the model's device.
struct StepResult {
  torch::Tensor loss;       // fp32: mean of the micro-batches' losses (MLM + NSP)
  torch::Tensor mlm_loss;   // fp32
  torch::Tensor nsp_loss;   // fp32: 0 without NSP labels
  torch::Tensor correct;    // int64: top-1 hits over the predicted tokens of all micro-batches
  torch::Tensor grad_norm;  // fp32: global L2 norm of the (unscaled) gradients, before clipping
  torch::Tensor nonfinite;  // fp32 0/1: the loss or (outside fp16) the gradient norm was NaN/Inf
  torch::Tensor skipped;    // fp32 0/1: no update was made (nonfinite, or an fp16 overflow)
  GradSyncStats sync;       // data-parallel: what the gradient all-reduce cost (host figures)
};

struct StepOptions {
  std::string precision = "bf16";  // autocast: "fp32" | "bf16" | "fp16" (with `scaler` enabled)
  double clip_grad_norm = 1.0;     // 0 = no clipping
  Distributed* dist = nullptr;     // data-parallel: figures summed over the ranks ...
  GradientSync* sync = nullptr;    // ... and gradients averaged (both set, or neither)
};

// Runs one step over `micro_batches` (each already on the model's device): zero the gradients,
// forward + backward each (loss divided by their count, scaled by `scaler` in fp16), unscale, the
// global gradient norm, clip factor and found-inf flag on the device, then AdamW at `lr`, which
// skips the update on the device when the flag is set; finally the scaler's update. Dropout draws
// from torch's default generator (the caller seeds it). Reads nothing back to the host. With
// `options.dist`, the gradients are averaged over the ranks during the last micro-batch's backward
// (`options.sync` starts each bucket's all-reduce as soon as its gradients are accumulated, so
// gradient accumulation synchronises once) and loss/accuracy are the global figures, so every
// rank takes the same NaN-guard decision.
// `global_predictions`: the step's predicted tokens over all micro-batches and ranks (the trainer
// sums the host counts); 0 = this process's own count. The MLM loss optimised and reported is the
// mean over those tokens, whatever their split into micro-batches and ranks.
StepResult train_step(model::BertForPreTraining& model, run::AdamW& optimizer, run::LossScaler& scaler,
                      const std::vector<data::Batch>& micro_batches, double lr, const StepOptions& options,
                      int64_t global_predictions = 0);

}  // namespace bert::train
