// Appending to metrics.jsonl, and cutting it back on resume.
#include "train/metrics_log.h"

#include <string>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/log.h"

namespace bert::train {
namespace fs = std::filesystem;

MetricsLog::MetricsLog(const fs::path& path, const fs::path& tensorboard_dir, int64_t first_step)
    : out_(path, std::ios::app) {
  if (!out_) throw util::io_error("cannot open " + path.string() + " for appending");
  if (tensorboard_dir.empty()) return;
  try {
    tensorboard_.emplace(tensorboard_dir);
    tensorboard_->session_start(first_step);
  } catch (const util::Error& e) {
    tensorboard_failed(e.what());
  }
}

void MetricsLog::write(const nlohmann::json& j) {
  out_ << j.dump() << '\n';
  out_.flush();
  if (!tensorboard_) return;
  try {
    tensorboard_->add_scalars(j.value("step", int64_t{0}), util::json_scalars(j));
  } catch (const util::Error& e) {
    tensorboard_failed(e.what());
  }
}

void MetricsLog::tensorboard_failed(const std::string& why) {
  util::log_warn(why + "; TensorBoard event files stop here (metrics.jsonl goes on)");
  tensorboard_.reset();
}

void drop_tensorboard_after(const fs::path& dir, int64_t step) {
  try {
    util::drop_events_after(dir, step);
  } catch (const util::Error& e) {
    util::log_warn(std::string("cannot cut the TensorBoard event files back to step ") + std::to_string(step) +
                   ": " + e.what() + "; TensorBoard may show points of the abandoned run after that step");
  }
}

void drop_metrics_after(const fs::path& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  bool dropped = false;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      if (nlohmann::json::parse(line).value("step", int64_t{0}) > step) {
        dropped = true;
        continue;
      }
    } catch (const nlohmann::json::exception&) {
      dropped = true;  // a torn last line from a crash
      continue;
    }
    kept += line + "\n";
  }
  if (dropped) util::write_file_atomic(path, kept);
}

}  // namespace bert::train
