// Masked-LM metrics of one model on validation files, per file and overall, with deterministic
// masking (so numbers compare across checkpoints and runs), as a readable table or as JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/options.h"
#include "eval/checkpoint_loader.h"
#include "run/mlm_metrics.h"

namespace bert::eval {

struct EvalOptions {
  std::vector<std::filesystem::path> files;      // validation corpora (BERT text or JSONL, .gz ok)
  int batch_size = 64;                           // sequences per forward pass
  uint64_t seed = 42;                            // masking (and NSP pairing) streams; training's
                                                 // training.seed reproduces its validation numbers
  std::string precision = "fp32";                // "fp32" | "bf16" | "fp16" (CUDA) autocast
  int max_seq_len = 0;                           // 0 = the checkpoint's data.max_seq_len, else 128
  bool nsp = false;                              // nsp-pairs packing + NSP accuracy
  int64_t max_batches = 0;                       // cap per file (0 = every sequence)
  std::filesystem::path cache_dir;               // token shards; empty = default_cache_dir(model)
  std::optional<data::MaskingOptions> masking;   // unset = the standard scoring: 15 %, 80/10/10
                                                 // (run::standard_eval_masking), as training validates
  bool checkpoint_masking = false;               // score with the checkpoint's training masking instead
};

// Metrics of one file (or of all files together).
struct FileMetrics {
  std::string file;       // the path as given, or "overall"
  run::MlmMetrics metrics;
  double tokens_per_s() const { return metrics.seconds > 0 ? metrics.tokens / metrics.seconds : 0.0; }
};

// One model evaluated on every file.
struct EvalReport {
  std::filesystem::path checkpoint;  // the resolved model dir
  int64_t step = -1;                 // -1 for a Hugging Face dir
  std::vector<FileMetrics> files;    // in the order given
  FileMetrics overall;               // prediction-weighted over the files (exact sums, not a mean of means)
  nlohmann::json settings;           // seed, batch size, precision, max_seq_len, packing, masking, device
  nlohmann::json to_json() const;
};

// Combines per-file metrics into one: loss, top-1 and top-5 weighted by predictions, NSP accuracy
// weighted by sequences, counts and seconds summed, perplexity = exp(loss).
run::MlmMetrics combine(const std::vector<FileMetrics>& files);

// The data and masking settings used for `m`: options given in `o` win, then the run config stored
// in the checkpoint, then defaults. Throws Error(kUsage) for out-of-range values (max_seq_len above
// the model's max_position_embeddings, batch_size < 1, an unknown precision).
data::DataOptions eval_data_options(const LoadedModel& m, const EvalOptions& o);
data::MaskingOptions eval_masking_options(const LoadedModel& m, const EvalOptions& o);

// Tokenizes (or reuses cached shards of) each file and runs run::evaluate_mlm over it in inference
// mode on `device`. Throws Error(kInput) naming the file when it is unreadable or holds no tokens,
// Error(kUsage) for bad options.
EvalReport evaluate(LoadedModel& m, const EvalOptions& o, const torch::Device& device);

// Evaluates every step-* checkpoint of `run_dir`, oldest first, with the same options (so the rows
// compare). A damaged checkpoint is skipped with a warning; Error(kInput) when none is valid.
std::vector<EvalReport> evaluate_run(const std::filesystem::path& run_dir, const EvalOptions& o,
                                     const torch::Device& device);

// {"run_dir", "checkpoints": [EvalReport::to_json()...]}: one object ready to plot (step vs loss).
nlohmann::json run_json(const std::filesystem::path& run_dir, const std::vector<EvalReport>& reports);

// A fixed-width table: one row per (checkpoint, file), plus each checkpoint's overall row when it
// has more than one file.
std::string format_table(const std::vector<EvalReport>& reports);

}  // namespace bert::eval
