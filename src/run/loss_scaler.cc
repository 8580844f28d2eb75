#include "run/loss_scaler.h"

#include <cmath>
#include <limits>

#include "util/error.h"

namespace bert::run {

LossScaler::LossScaler(bool enabled, const torch::Device& device, double initial_scale, int64_t growth_interval)
    : enabled_(enabled), growth_interval_(growth_interval) {
  if (!enabled_) return;
  auto f = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  scale_ = torch::full({}, initial_scale, f);
  growth_tracker_ = torch::zeros({}, f.dtype(torch::kInt32));
  found_inf_ = torch::zeros({}, f);
}

torch::Tensor LossScaler::apply(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }

void LossScaler::unscale(const std::vector<torch::Tensor>& params) {
  if (!enabled_) return;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  found_inf_.zero_();
  at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf_, scale_.reciprocal());
}

bool LossScaler::overflowed() const { return enabled_ && found_inf_.item<float>() != 0.0f; }

void LossScaler::update() {
  if (enabled_) at::_amp_update_scale_(scale_, growth_tracker_, found_inf_, 2.0, 0.5, growth_interval_);
}

double LossScaler::scale() const { return enabled_ ? scale_.item<double>() : 1.0; }

nlohmann::json LossScaler::state() const {
  if (!enabled_) return nullptr;
  return {{"scale", scale_.item<double>()}, {"growth_tracker", growth_tracker_.item<int64_t>()}};
}

void LossScaler::restore(const nlohmann::json& state, const std::string& source) {
  if (!enabled_ || state.is_null()) return;
  const auto bad = [&](const std::string& what) {
    return util::input_error(source + ": loss_scaler." + what + " (this checkpoint's trainer_state.json is "
                             "damaged; resume from another checkpoint)");
  };
  if (!state.is_object()) throw bad("state must be an object");
  const auto s = state.find("scale");
  if (s == state.end() || !s->is_number() || !(s->get<double>() > 0) ||
      s->get<double>() > std::numeric_limits<float>::max()) {
    throw bad("scale must be a positive finite fp32 number");
  }
  const auto g = state.find("growth_tracker");
  if (g == state.end() || !g->is_number_integer() || g->get<int64_t>() < 0 ||
      g->get<int64_t>() >= growth_interval_) {
    throw bad("growth_tracker must be an integer in [0, " + std::to_string(growth_interval_) + ")");
  }
  scale_.fill_(s->get<double>());
  growth_tracker_.fill_(g->get<int64_t>());
}

}  // namespace bert::run
