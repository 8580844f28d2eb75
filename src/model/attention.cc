#include "model/attention.h"

#include <cmath>
#include <limits>

#include "model/dropout.h"

namespace bert::model {

torch::Tensor attention_unfused(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const std::optional<torch::Tensor>& key_mask, double p, bool training) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  // Scaling q ([B, h, T, d]) costs less than scaling the scores ([B, h, T, T]) when d < T.
  auto scores = torch::matmul(q * scale, k.transpose(-2, -1));  // [B, h, T, T]
  if (key_mask) scores = scores.masked_fill(key_mask->logical_not(), -std::numeric_limits<double>::infinity());
  auto probs = torch::softmax(scores, -1);                      // [B, h, T, T]
  return torch::matmul(hash_dropout(probs, p, training), v);  // [B, h, T, d]
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const std::optional<torch::Tensor>& key_mask, double p, bool training) {
  const double p_used = training ? p : 0.0;
  if (!q.is_cpu() || (p_used == 0.0 && q.scalar_type() == torch::kFloat32)) {
    return at::scaled_dot_product_attention(q, k, v, key_mask, p_used);
  }
  return attention_unfused(q, k, v, key_mask, p_used, training);
}

}  // namespace bert::model
