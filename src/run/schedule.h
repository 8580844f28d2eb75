// The learning-rate schedule as a pure function of the optimizer step (llm.c style): resuming at
// step k needs no schedule state, only k.
#pragma once

#include <cstdint>

#include "run/config.h"

namespace bert::run {

// LR for optimizer step `step` (0-based): linear warmup 0 -> lr over warmup_steps, then
// "linear" decay to min_lr_ratio*lr at max_steps, "cosine" decay to the same floor, or "constant".
double lr_at(int64_t step, const TrainingOptions& t);

}  // namespace bert::run
