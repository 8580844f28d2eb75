// The run directory at the start of a run: made and checked writable, and the checkpoint a run
// resumes from (checkpoint.resume) resolved in it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace bert::train {

// Creates `run_dir` (and its parents) if needed and checks that a file can be written in it.
// Throws Error(kIo) telling the user to set checkpoint.dir to a writable location.
void prepare_run_dir(const std::filesystem::path& run_dir);

// The checkpoint to resume from: "auto" -> the newest valid one in the run dir (if any); "never";
// a checkpoint dir; or a run dir (-> its newest valid checkpoint). Checked before any data work.
// Throws Error(kUsage) for a value that is none of these (`source` names the config file),
// Error(kInput) for a directory with no valid checkpoint or a damaged checkpoint.
std::optional<std::filesystem::path> resolve_resume(const std::string& resume, const std::filesystem::path& run_dir,
                                                    const std::string& source);

}  // namespace bert::train
