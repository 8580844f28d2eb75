// A batch as plain host arrays, row-major [batch, seq_len]: what the loader produces, before it
// becomes tensors (batch.h) -- so the data layer below the torch boundary stays torch-free.
#pragma once

#include <cstdint>
#include <vector>

namespace bert::data {

struct HostBatch {
  int batch_size = 0;
  int seq_len = 0;
  std::vector<int64_t> input_ids;       // [B*T] after masking; [PAD] after the last real token
  std::vector<int64_t> token_type_ids;  // [B*T] 0 for segment A, 1 for segment B, 0 on padding
  std::vector<int64_t> attention_mask;  // [B*T] 1 real token, 0 padding
  std::vector<int64_t> mlm_labels;      // [B*T] original id at chosen positions, -100 elsewhere
  std::vector<int64_t> nsp_labels;      // [B] 0 = B is the real next segment, 1 = random; -100 off
  int64_t num_real_tokens = 0;          // sum of attention_mask
  int64_t num_predictions = 0;          // count of mlm_labels != -100
};

}  // namespace bert::data
