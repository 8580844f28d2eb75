// HostBatch -> tensors.
#include "data/batch.h"

namespace bert::data {
namespace {

torch::Tensor to_tensor(const std::vector<int64_t>& v, std::vector<int64_t> shape,
                        const torch::Device& device) {
  auto host = torch::from_blob(const_cast<int64_t*>(v.data()), shape, torch::kInt64);
  if (device.is_cpu()) return host.clone();
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

}  // namespace

Batch to_device(const HostBatch& h, const torch::Device& device) {
  const int64_t b = h.batch_size, t = h.seq_len;
  Batch out;
  out.input_ids = to_tensor(h.input_ids, {b, t}, device);
  out.token_type_ids = to_tensor(h.token_type_ids, {b, t}, device);
  out.attention_mask = to_tensor(h.attention_mask, {b, t}, device);
  out.mlm_labels = to_tensor(h.mlm_labels, {b, t}, device);
  out.nsp_labels = to_tensor(h.nsp_labels, {b}, device);
  out.num_real_tokens = h.num_real_tokens;
  out.num_predictions = h.num_predictions;
  return out;
}

}  // namespace bert::data
