// The arithmetic of training.time_budget.
#include "train/budget.h"

#include <algorithm>
#include <cmath>

namespace bert::train {

int64_t steps_that_fit(double left_s, const ProbeTimes& probe, int64_t eval_every, int64_t save_every,
                       double margin, int64_t cap) {
  double per_step = probe.step_s;
  if (eval_every > 0) per_step += probe.eval_s / static_cast<double>(eval_every);
  if (save_every > 0) per_step += probe.save_s / static_cast<double>(save_every);
  const double fixed = probe.eval_s + probe.save_s;  // the final validation and save
  const double usable = left_s * (1.0 - margin) - fixed;
  int64_t n = per_step > 0 && usable > 0 ? static_cast<int64_t>(std::floor(usable / per_step)) : 1;
  n = std::max<int64_t>(1, n);
  if (cap > 0) n = std::min(n, cap);
  return n;
}

WallBudget::WallBudget(double budget_s, double used_before_s, std::chrono::steady_clock::time_point start)
    : budget_s_(budget_s), used_before_s_(used_before_s), start_(start) {}

double WallBudget::used_s() const {
  return used_before_s_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

}  // namespace bert::train
