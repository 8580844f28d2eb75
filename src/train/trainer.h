// The training run: builds vocab, data, model and optimizer from a RunConfig, resumes from the
// latest checkpoint, runs the loop (masked batches -> forward -> loss -> backward -> clip -> AdamW),
// logs metrics, validates, checkpoints, and stops cleanly on SIGINT/SIGTERM.
#pragma once

#include <filesystem>
#include <string>

#include "run/config.h"

namespace bert::train {

struct TrainSummary {
  int64_t step = 0;                       // optimizer steps completed
  int stop_signal = 0;                    // 0, or the signal that stopped the run after a save
  bool target_reached = false;            // training.target_accuracy was met (the run stopped there)
  std::filesystem::path last_checkpoint;  // empty if none was written
  double last_loss = 0;                   // mean training loss of the last logging window
};

// Runs the whole training described by `config` (`source` names the config file in messages).
// Throws util::Error on bad input, a NaN streak, or an I/O failure; everything saved stays valid.
TrainSummary run_training(const run::RunConfig& config, const std::string& source);

}  // namespace bert::train
