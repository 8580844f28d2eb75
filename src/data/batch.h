// The torch boundary of the data layer: a HostBatch as int64 tensors on a device, with what the host
// knows about it (predicted positions, padding, NSP labels) so the model needs no device->host read.
#pragma once

#include <torch/torch.h>

#include "data/host_batch.h"

namespace bert::data {

struct Batch {
  torch::Tensor input_ids;       // [B, T] int64
  torch::Tensor token_type_ids;  // [B, T] int64
  torch::Tensor attention_mask;  // [B, T] int64, 1 = real token
  torch::Tensor mlm_labels;      // [B, T] int64, -100 = not predicted
  torch::Tensor nsp_labels;      // [B] int64, -100 when NSP is off
  torch::Tensor mlm_positions;   // [N] int64 flat indices b*T+t where mlm_labels != -100, ascending
  bool has_padding = false;      // some attention_mask cell is 0
  bool has_nsp = false;          // some nsp_labels entry is not -100
  int64_t num_real_tokens = 0;
  int64_t num_predictions = 0;   // N
};

// Copies a HostBatch into tensors on `device` (pinned + non-blocking when it is CUDA); the
// predicted positions and the two flags are computed on the host, before the copy.
Batch to_device(const HostBatch& host, const torch::Device& device);

}  // namespace bert::data
