// metrics.jsonl, the run's metrics: one JSON object a line (train windows, validations, the target),
// appended as the run goes and cut back to a checkpoint's step when a run resumes from it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>

#include "util/tensorboard.h"

namespace bert::train {

// Appends one JSON object per line to metrics.jsonl, flushed at once (a crash loses nothing logged),
// and, when given a TensorBoard directory, the same rows' numbers as scalars ("train/loss",
// "valid/accuracy", ...: util::json_scalars) to a new event file there.
class MetricsLog {
 public:
  // Opens `path` for appending (creating it). Throws Error(kIo) when it cannot. A non-empty
  // `tensorboard_dir` gets a new event file that starts with a SessionLog START at `first_step` (the
  // first step this invocation trains), so TensorBoard drops any point at or after it that older files
  // hold. Event files are a view: a failure to write one is a warning and ends the view, never the run.
  explicit MetricsLog(const std::filesystem::path& path, const std::filesystem::path& tensorboard_dir = {},
                      int64_t first_step = 1);
  void write(const nlohmann::json& j);

 private:
  void tensorboard_failed(const std::string& why);

  std::ofstream out_;
  std::optional<util::EventFileWriter> tensorboard_;
};

// Drops metrics.jsonl rows logged after `step` (a resume from an earlier checkpoint replays them)
// and lines that do not parse (a torn last line from a crash); rewrites `path` atomically, and only
// when it drops one. A missing file is left missing.
void drop_metrics_after(const std::filesystem::path& path, int64_t step);
// The same for the event files of a TensorBoard directory (util::drop_events_after); a file it cannot
// read or rewrite is a warning, not an error.
void drop_tensorboard_after(const std::filesystem::path& dir, int64_t step);

}  // namespace bert::train
