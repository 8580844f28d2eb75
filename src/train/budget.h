// training.time_budget: the step count that fits in a wall-clock budget (fixed once, from a short
// measured probe, so everything after it is a pure function of the step), and the wall clock that
// holds the run to the budget. No torch here.
#pragma once

#include <chrono>
#include <cstdint>

namespace bert::train {

// What the probe measured, in seconds: one optimizer step, one validation pass, one checkpoint save.
struct ProbeTimes {
  double step_s = 0;
  double eval_s = 0;
  double save_s = 0;
};

// The optimizer steps that fit in `left_s` seconds, counting a validation every `eval_every` steps
// (0: none in the loop) plus one at the end, a save every `save_every` steps plus one at the end,
// and keeping `margin` (a fraction of left_s) in reserve. At least 1; at most `cap` when cap > 0.
int64_t steps_that_fit(double left_s, const ProbeTimes& probe, int64_t eval_every, int64_t save_every,
                       double margin, int64_t cap);

// The budget's wall clock across invocations: the seconds earlier invocations used (from the
// checkpoint) plus those since this one started.
class WallBudget {
 public:
  // `start`: when this invocation started (the budget counts its set-up too).
  WallBudget(double budget_s, double used_before_s, std::chrono::steady_clock::time_point start);
  double budget_s() const { return budget_s_; }
  double used_s() const;
  double left_s() const { return budget_s_ - used_s(); }
  bool spent() const { return left_s() <= 0; }

 private:
  double budget_s_, used_before_s_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace bert::train
