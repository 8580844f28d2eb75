// The checkpoint directory format without torch (DESIGN.md): naming run_dir/step-XXXXXXX, the
// manifest.json that lists every file's size and crc32, verification, finding the newest valid
// checkpoint, the latest pointer, pruning, repairing interrupted saves, and the checked header of
// trainer_state.json. checkpoint.h writes and loads the tensors; this file is what readers of
// untrusted run dirs (bert-eval, resume, fuzzing) go through first.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace bert::run {

// Version of the layout and of trainer_state.json. A checkpoint with a higher number was written by
// a newer bert-train and is refused with a message saying so.
inline constexpr int kCheckpointFormatVersion = 1;

// "step-0000500".
std::string checkpoint_name(int64_t step);

// Writes dir/manifest.json listing every regular file in `dir` (size, crc32). The last file a save
// writes: a checkpoint without it is incomplete.
void write_manifest(const std::filesystem::path& dir);

// "" if every file in the manifest exists with the recorded size and crc32, else the reason.
// Never throws for a bad manifest: any malformation is a reason.
std::string verify_checkpoint(const std::filesystem::path& dir);

// The newest valid checkpoint in run_dir: the `latest` pointer first, then step-* newest first.
// Each damaged one is skipped with a warning. nullopt when there is none.
std::optional<std::filesystem::path> find_latest_checkpoint(const std::filesystem::path& run_dir);

// After a rewind (resuming from step `step` while later step-* dirs exist), renames those later dirs
// to abandoned-step-*, so they are kept but never resumed from or counted by pruning.
void set_aside_newer_checkpoints(const std::filesystem::path& run_dir, int64_t step);

// Removes step-*.tmp-* dirs of saves that never completed and restores a step-* dir left as
// step-*.old-* by a crash between the two renames of a save.
void clean_stale_temporaries(const std::filesystem::path& run_dir);

// Removes all but the newest `keep_last` step-* dirs (0 keeps all), never the one `latest` names.
void prune_checkpoints(const std::filesystem::path& run_dir, int keep_last);

// Reads and checks dir/trainer_state.json: an object, format_version == kCheckpointFormatVersion
// (a newer one is refused as written by a newer bert-train), step an integer >= 0,
// tokens_seen and skipped_steps integers >= 0 where present. Throws
// Error(kInput) naming the file. Returns the whole object (loader cursor, counters, config).
nlohmann::json read_trainer_state(const std::filesystem::path& dir, int64_t* step);

}  // namespace bert::run
