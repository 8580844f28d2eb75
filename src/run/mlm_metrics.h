// Masked-LM metrics over a stream of batches (validation during training, and bert-eval): loss,
// top-1/top-5 accuracy on predicted tokens, perplexity, NSP accuracy. Inference mode, no autograd.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <functional>
#include <string>

#include "data/batch.h"
#include "data/host_batch.h"
#include "model/bert_model.h"

namespace bert::run {

// The model's inputs for a device batch, with the host-side facts that make its forward sync-free.
model::PretrainingInputs model_inputs(const data::Batch& batch);

struct MlmMetrics {
  double loss = 0;              // mean cross-entropy over all predicted tokens
  double accuracy = 0;          // top-1 on predicted tokens
  double top5 = 0;              // top-5 on predicted tokens
  double perplexity = 0;        // exp(loss)
  double nsp_accuracy = -1;     // -1 when there were no NSP labels
  int64_t predictions = 0;      // predicted tokens counted
  int64_t sequences = 0;
  int64_t tokens = 0;           // real (non-pad) tokens
  double seconds = 0;           // wall time of the pass
  nlohmann::json to_json() const;
};

// Fills `batch` and returns true, or returns false at the end of the data.
using BatchSource = std::function<bool(data::HostBatch& batch)>;

// Sums a CPU float64 tensor over the ranks in place (data-parallel validation).
using SumOverRanks = std::function<void(torch::Tensor& sums)>;

// Runs `model` (switched to eval mode for the pass, its previous mode restored) over every batch
// from `next` (at most `max_batches` when > 0) on `device` under `precision` autocast. With
// `sum_over_ranks`, each rank passes its own share of the batches and the metrics are those of
// all of them (counts exact; the loss sum differs from one process's only in float64 rounding).
MlmMetrics evaluate_mlm(model::BertForPreTraining& model, const BatchSource& next,
                        const torch::Device& device, const std::string& precision, int64_t max_batches = 0,
                        const SumOverRanks& sum_over_ranks = nullptr);

}  // namespace bert::run
