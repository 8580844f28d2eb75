// Appending to metrics.jsonl, and cutting it back on resume.
#include "train/metrics_log.h"

#include <string>

#include "util/atomic_file.h"
#include "util/error.h"

namespace bert::train {
namespace fs = std::filesystem;

MetricsLog::MetricsLog(const fs::path& path) : out_(path, std::ios::app) {
  if (!out_) throw util::io_error("cannot open " + path.string() + " for appending");
}

void MetricsLog::write(const nlohmann::json& j) {
  out_ << j.dump() << '\n';
  out_.flush();
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
