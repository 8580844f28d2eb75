// Writing and loading checkpoints (DESIGN.md; names, manifest and verification are in
// checkpoint_format.h): run_dir/step-0000500/ holds model.safetensors + config.json + vocab files (so transformers loads it as is), optimizer.safetensors, trainer_state.json, and a
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
#include "run/checkpoint_format.h"
#include "wordpiece/vocab.h"

namespace bert::train {

// Everything a checkpoint stores besides the model itself.
struct CheckpointContents {
  int64_t step = 0;
  nlohmann::json trainer_state;                           // step, cursor, counters, resolved config
  std::map<std::string, torch::Tensor> optimizer_state;  // run::AdamW::state()
};

// Writes run_dir/step-XXXXXXX atomically and points run_dir/latest at it. Returns its path. Throws
// Error(kIo) (disk full, read-only) with the previous checkpoints untouched.
std::filesystem::path save_checkpoint(const std::filesystem::path& run_dir, model::BertForPreTraining& model,
                                      const wordpiece::Vocab& vocab, const CheckpointContents& contents);

// Reads trainer_state.json and optimizer.safetensors, and loads the weights into `model`.
// Throws Error(kInput) naming the file on any mismatch.
CheckpointContents load_checkpoint(const std::filesystem::path& dir, model::BertForPreTraining& model);

}  // namespace bert::train
