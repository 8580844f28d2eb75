// The "local" initialisation: sinusoidal positions and attention heads that start on fixed
// neighbour offsets (see local_init.h for the arithmetic).
#include "model/local_init.h"

#include <cmath>

#include "util/error.h"

namespace bert::model {

int64_t local_head_offset(int64_t head) {
  const int64_t k = head % 8;                 // 0..7
  const int64_t distance = k / 2 + 1;         // 1, 1, 2, 2, 3, 3, 4, 4
  return k % 2 == 0 ? -distance : distance;   // left first
}

void apply_local_init(torch::Tensor position_embeddings, torch::Tensor query_weight, torch::Tensor query_bias,
                      torch::Tensor key_weight, torch::Tensor key_bias, const BertConfig& config,
                      at::Generator& gen, const std::vector<LocalLayer>& more_layers) {
  torch::NoGradGuard no_grad;
  const int64_t hidden = config.hidden_size, heads = config.num_heads, head_size = hidden / heads;
  const int64_t k = head_size / 2;  // frequencies; 2k positional columns
  if (k < 1) {
    throw util::usage_error("model.init = \"local\" needs a head size (hidden_size / num_heads) of at least 2, got " +
                            std::to_string(head_size));
  }
  const int64_t positions = position_embeddings.size(0);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  const auto freq = torch::rand({k}, gen, f32) * M_PI;                              // [K] in (0, pi)
  const auto angle = torch::arange(positions, f32).unsqueeze(1) * freq.unsqueeze(0);  // [P, K]
  auto pe = torch::zeros({positions, hidden}, f32);
  pe.narrow(1, 0, 2 * k).copy_(torch::stack({torch::cos(angle), torch::sin(angle)}, 2).reshape({positions, 2 * k}));
  pe.mul_(config.initializer_range * std::sqrt(static_cast<double>(hidden)) / std::sqrt(static_cast<double>(k)));
  position_embeddings.copy_(pe);

  set_local_heads(query_weight, query_bias, key_weight, key_bias, freq, config, 0);
  for (size_t l = 0; l < more_layers.size(); ++l) {
    const LocalLayer& m = more_layers[l];
    set_local_heads(m.query_weight, m.query_bias, m.key_weight, m.key_bias, freq, config,
                    static_cast<int64_t>(l + 1) * heads);
  }
}

void set_local_heads(torch::Tensor query_weight, torch::Tensor query_bias, torch::Tensor key_weight,
                     torch::Tensor key_bias, const torch::Tensor& freq, const BertConfig& config, int64_t first_head) {
  torch::NoGradGuard no_grad;
  const int64_t hidden = config.hidden_size, heads = config.num_heads, head_size = hidden / heads;
  const int64_t k = head_size / 2;
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  auto q = query_weight.detach().to(torch::kFloat32).clone();  // [H, H]
  auto kw = key_weight.detach().to(torch::kFloat32).clone();   // [H, H]
  const auto eye = torch::eye(2 * k, f32);
  for (int64_t h = 0; h < heads; ++h) {
    // (cos(p w), sin(p w)) -> (cos((p + o) w), sin((p + o) w)): a rotation by o w in each pair.
    const double offset = static_cast<double>(local_head_offset(first_head + h));
    const auto c = torch::cos(freq * offset);  // [K]
    const auto s = torch::sin(freq * offset);  // [K]
    auto rot = torch::zeros({2 * k, 2 * k}, f32);
    for (int64_t i = 0; i < k; ++i) {
      rot[2 * i][2 * i] = c[i];
      rot[2 * i][2 * i + 1] = -s[i];
      rot[2 * i + 1][2 * i] = s[i];
      rot[2 * i + 1][2 * i + 1] = c[i];
    }
    auto q_rows = q.narrow(0, h * head_size, head_size);
    auto k_rows = kw.narrow(0, h * head_size, head_size);
    q_rows.zero_();
    k_rows.zero_();
    q_rows.narrow(0, 0, 2 * k).narrow(1, 0, 2 * k).copy_(rot);
    k_rows.narrow(0, 0, 2 * k).narrow(1, 0, 2 * k).copy_(eye);
  }
  query_weight.copy_(q);
  key_weight.copy_(kw);
  query_bias.zero_();
  key_bias.zero_();
}

}  // namespace bert::model
