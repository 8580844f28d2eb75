// Opens a model for evaluation from whatever directory the user points at: a checkpoint dir written
// by bert-train (verified against its manifest), a run dir (its newest valid checkpoint), or a plain
// Hugging Face BERT dir (config.json + model.safetensors + vocab.txt [+ tokenizer_config.json]).
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/bert_model.h"
#include "run/config.h"
#include "wordpiece/vocab.h"

namespace bert::eval {

// What kind of directory a model came from.
enum class SourceKind {
  kCheckpoint,   // step-XXXXXXX/ with manifest.json and trainer_state.json
  kHuggingFace,  // config.json + model.safetensors + vocab.txt, no manifest
};

// A model ready for inference (eval mode, on the requested device), with its vocabulary.
struct LoadedModel {
  model::BertForPreTraining model{nullptr};
  std::shared_ptr<const wordpiece::Vocab> vocab;
  std::filesystem::path dir;                   // the directory the weights were read from
  SourceKind kind = SourceKind::kCheckpoint;
  int64_t step = -1;                           // the checkpoint's training step; -1 for a HF dir
  bool has_nsp_head = true;                    // false when the weights had no pooler / NSP head
                                               // (a transformers BertForMaskedLM save)
  std::optional<run::RunConfig> run_config;  // the run's resolved config, when the checkpoint has it
};

// Where the weights behind `path` live. A dir with manifest.json is a checkpoint and must pass
// run::verify_checkpoint; a dir with `latest` or step-* subdirs is a run dir and resolves to
// run::find_latest_checkpoint; a dir with config.json is a Hugging Face dir and must also hold
// model.safetensors and vocab.txt. Sets `*kind`. Throws Error(kInput) naming the directory and what
// is missing or damaged.
std::filesystem::path resolve_model_dir(const std::filesystem::path& path, SourceKind* kind);

// Resolves `path` (as above) and loads config, vocabulary and weights onto `device` in fp32, eval
// mode. Throws Error(kInput) naming the file for a missing/corrupt file, a config that does not
// parse, or a vocabulary whose size differs from the model's vocab_size.
LoadedModel load_model(const std::filesystem::path& path, const torch::Device& device);

// The step-* checkpoint dirs of a run dir, oldest first (not verified; the loader verifies each).
// Throws Error(kInput) when `run_dir` is not a directory or holds none.
std::vector<std::filesystem::path> list_checkpoints(const std::filesystem::path& run_dir);

// Where evaluation token shards go when the user names no cache dir: `<run dir>/cache` (shared with
// training, which tokenized the validation files there with the same vocabulary) for a checkpoint
// inside a run dir, else `<system temp>/bert-eval-cache/<vocab fingerprint>`. Never inside the
// model dir itself, so a checkpoint stays exactly what its manifest lists.
std::filesystem::path default_cache_dir(const LoadedModel& m);

}  // namespace bert::eval
