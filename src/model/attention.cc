#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/dropout.h"
#include "util/error.h"

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

namespace {
bool uses_fused_kernel(const torch::Tensor& q, double p_used) {
  return !q.is_cpu() || (p_used == 0.0 && q.scalar_type() == torch::kFloat32);
}
}  // namespace

void set_attention_backend(const std::string& name) {
  static const char* kNames[] = {"auto", "flash", "efficient", "cudnn", "math"};
  if (std::find(std::begin(kNames), std::end(kNames), name) == std::end(kNames)) {
    throw util::usage_error("attention backend \"" + name + "\" is not one of: auto, flash, efficient, cudnn, math");
  }
  auto& ctx = at::globalContext();
  const bool is_auto = name == "auto";
  ctx.setSDPUseFlash(is_auto || name == "flash");
  // Flash takes no mask: "flash" runs batches with padding on the memory-efficient kernel.
  ctx.setSDPUseMemEfficient(is_auto || name == "efficient" || name == "flash");
  ctx.setSDPUseCuDNN(name == "cudnn");
  ctx.setSDPUseMath(is_auto || name == "math");
}

std::string attention_kernel_name(const torch::Tensor& q, bool with_key_mask, double p, bool training) {
  const double p_used = training ? p : 0.0;
  if (q.is_cpu()) return uses_fused_kernel(q, p_used) ? "cpu-fused" : "cpu-unfused";
  std::optional<torch::Tensor> mask;
  if (with_key_mask) mask = torch::ones({q.size(0), 1, 1, q.size(2)}, q.options().dtype(torch::kBool));
  int64_t choice = -1;
  try {
    choice = at::_fused_sdp_choice(q, q, q, mask, p_used);
  } catch (const c10::Error&) {
    return "none";
  }
  switch (choice) {  // sdp::SDPBackend
    case 0: return "math";
    case 1: return "flash";
    case 2: return "efficient";
    case 3: return "cudnn";
    default: return "none";
  }
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const std::optional<torch::Tensor>& key_mask, double p, bool training) {
  const double p_used = training ? p : 0.0;
  if (uses_fused_kernel(q, p_used)) {
    return at::scaled_dot_product_attention(q, k, v, key_mask, p_used);
  }
  return attention_unfused(q, k, v, key_mask, p_used, training);
}

}  // namespace bert::model
