// Checkpoint directories (DESIGN.md): run_dir/step-0000500/ holds model.safetensors + config.json +
// vocab files (so transformers loads it as is), optimizer.safetensors, trainer_state.json, and a
// manifest.json with every file's size and crc32. Written as a temp dir, fsynced, renamed; then the
// run_dir/latest pointer is replaced atomically. A damaged checkpoint is detected and skipped.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "model/bert_model.h"
#include "wordpiece/vocab.h"

namespace bert::train {

inline constexpr int kCheckpointFormatVersion = 1;

// "step-0000500".
std::string checkpoint_name(int64_t step);

// Everything a checkpoint stores besides the model itself.
struct CheckpointContents {
  int64_t step = 0;
  nlohmann::json trainer_state;                           // step, cursor, counters, resolved config
  std::map<std::string, torch::Tensor> optimizer_state;  // AdamW::state()
};

// Writes run_dir/step-XXXXXXX atomically and points run_dir/latest at it. Returns its path. Throws
// Error(kIo) (disk full, read-only) with the previous checkpoints untouched.
std::filesystem::path save_checkpoint(const std::filesystem::path& run_dir, model::BertForPreTraining& model,
                                      const wordpiece::Vocab& vocab, const CheckpointContents& contents);

// "" if every file in the manifest exists with the recorded size and crc32, else the reason.
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

// Reads trainer_state.json and optimizer.safetensors, and loads the weights into `model`.
// Throws Error(kInput) naming the file on any mismatch.
CheckpointContents load_checkpoint(const std::filesystem::path& dir, model::BertForPreTraining& model);

// Removes all but the newest `keep_last` step-* dirs (0 keeps all), never the one `latest` names.
void prune_checkpoints(const std::filesystem::path& run_dir, int keep_last);

}  // namespace bert::train
