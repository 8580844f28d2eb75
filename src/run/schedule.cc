// Warmup + linear/cosine/constant learning-rate schedule.
#include "run/schedule.h"

#include <algorithm>
#include <cmath>

namespace bert::run {

double lr_at(int64_t step, const TrainingOptions& t) {
  if (t.warmup_steps > 0 && step < t.warmup_steps) {
    return t.lr * static_cast<double>(step + 1) / static_cast<double>(t.warmup_steps);
  }
  if (t.schedule == "constant") return t.lr;
  const double floor = t.min_lr_ratio * t.lr;
  const int64_t decay_steps = std::max<int64_t>(1, t.max_steps - t.warmup_steps);
  const double progress =
      std::clamp(static_cast<double>(step - t.warmup_steps) / static_cast<double>(decay_steps), 0.0, 1.0);
  if (t.schedule == "cosine") {
    return floor + (t.lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  return floor + (t.lr - floor) * (1.0 - progress);
}

}  // namespace bert::run
