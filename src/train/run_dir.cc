// The run directory's checks and the resume target.
#include "train/run_dir.h"

#include <fstream>

#include "run/checkpoint_format.h"
#include "util/error.h"

namespace bert::train {
namespace fs = std::filesystem;

void prepare_run_dir(const fs::path& run_dir) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec || !fs::is_directory(run_dir)) {
    throw util::io_error("cannot create the run directory " + run_dir.string() + ": " + ec.message() +
                         "; set checkpoint.dir to a writable location");
  }
  fs::path probe = run_dir / ".write-test";
  std::ofstream out(probe);
  if (!out) {
    throw util::io_error("the run directory " + run_dir.string() +
                         " is not writable; set checkpoint.dir to a writable location");
  }
  out.close();
  fs::remove(probe, ec);
}

std::optional<fs::path> resolve_resume(const std::string& resume, const fs::path& run_dir, const std::string& source) {
  if (resume == "never") return std::nullopt;
  if (resume == "auto") return run::find_latest_checkpoint(run_dir);
  std::error_code ec;
  const fs::path p(resume);
  if (!fs::is_directory(p, ec)) {
    throw util::usage_error(source + ": checkpoint.resume = \"" + resume +
                            "\" is not auto, never, or an existing checkpoint or run directory");
  }
  if (!fs::exists(p / "manifest.json", ec)) {
    auto latest = run::find_latest_checkpoint(p);
    if (!latest) throw util::input_error("cannot resume from " + resume + ": it holds no valid checkpoint");
    return latest;
  }
  std::string why = run::verify_checkpoint(p);
  if (!why.empty()) throw util::input_error("cannot resume from " + resume + ": " + why);
  return p;
}

}  // namespace bert::train
