// HostBatch -> tensors.
#include "data/batch.h"

#include <algorithm>

namespace bert::data {
namespace {

constexpr int64_t kIgnoreIndex = -100;

torch::Tensor to_tensor(const std::vector<int64_t>& v, std::vector<int64_t> shape,
                        const torch::Device& device) {
  auto host = torch::from_blob(const_cast<int64_t*>(v.data()), shape, torch::kInt64);
  if (device.is_cpu()) return host.clone();
  // The caching host allocator keeps the pinned buffer alive until the copy has run.
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
  std::vector<int64_t> positions;
  positions.reserve(static_cast<size_t>(std::max<int64_t>(h.num_predictions, 0)));
  for (size_t i = 0; i < h.mlm_labels.size(); ++i) {
    if (h.mlm_labels[i] != kIgnoreIndex) positions.push_back(static_cast<int64_t>(i));
  }
  out.mlm_positions = to_tensor(positions, {static_cast<int64_t>(positions.size())}, device);
  out.has_padding = std::find(h.attention_mask.begin(), h.attention_mask.end(), 0) != h.attention_mask.end();
  out.has_nsp = std::any_of(h.nsp_labels.begin(), h.nsp_labels.end(), [](int64_t l) { return l != kIgnoreIndex; });
  out.num_real_tokens = h.num_real_tokens;
  out.num_predictions = static_cast<int64_t>(positions.size());
  return out;
}

}  // namespace bert::data
