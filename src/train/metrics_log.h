// metrics.jsonl, the run's metrics: one JSON object a line (train windows, validations, the target),
// appended as the run goes and cut back to a checkpoint's step when a run resumes from it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>

namespace bert::train {

// Appends one JSON object per line to metrics.jsonl, flushed at once (a crash loses nothing logged).
class MetricsLog {
 public:
  // Opens `path` for appending (creating it). Throws Error(kIo) when it cannot.
  explicit MetricsLog(const std::filesystem::path& path);
  void write(const nlohmann::json& j);

 private:
  std::ofstream out_;
};

// Drops metrics.jsonl rows logged after `step` (a resume from an earlier checkpoint replays them)
// and lines that do not parse (a torn last line from a crash); rewrites `path` atomically, and only
// when it drops one. A missing file is left missing.
void drop_metrics_after(const std::filesystem::path& path, int64_t step);

}  // namespace bert::train
