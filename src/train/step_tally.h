// What the training loop counts between two log lines: the step's figures summed on the device
// (read back only when the loop logs, shows progress or saves) and the host-side counts beside them.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>

#include "train/grad_sync.h"
#include "train/train_step.h"

namespace bert::train {

// The step's figures summed on the device since the last log line, plus the run's NaN-guard
// counters; read back (one device->host copy) only when the loop logs, shows progress or saves.
class DeviceTally {
 public:
  explicit DeviceTally(const torch::Device& device);

  // Adds one step's figures (device ops only): a non-finite loss or gradient norm adds 0 to its sum
  // and counts in the guard instead.
  void add(const StepResult& r);

  struct Read {
    double loss = 0, mlm_loss = 0, nsp_loss = 0, loss_steps = 0, grad_norm = 0, correct = 0;
    double nonfinite = 0, skipped = 0, streak = 0, longest_streak = 0;
  };
  // The window's sums and the guard's counters: the one synchronising call.
  Read read() const;
  // Starts a new window (the guard's counters run on).
  void reset_window() { window_.zero_(); }

 private:
  static constexpr int64_t kWindowFields = 6, kGuardFields = 4;
  torch::Tensor window_, guard_;  // [6] fp64, [4] fp64 on the device
};

// Host-side counts of the window (known without reading the device).
struct Window {
  int64_t steps = 0, predictions = 0, tokens = 0, sequences = 0;
  GradSyncStats sync;  // summed over the window's steps (data-parallel)
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};

}  // namespace bert::train
