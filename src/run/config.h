// The run config: one JSON file whose sections map to typed option structs (model, data, masking,
// training, checkpoint, runtime). Parsing is strict -- unknown keys (with "did you mean"), wrong
// types and out-of-range values are errors naming the JSON path -- and every key has a default.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "data/options.h"
#include "model/bert_config.h"

namespace bert::run {

struct TrainingOptions {
  int batch_size = 32;                 // sequences per micro-batch (per rank)
  int grad_accum_steps = 1;            // micro-batches per optimizer step
  int64_t max_steps = 2000;            // optimizer steps in the whole run (with time_budget: a cap, 0 = none)
  double time_budget_s = 0;            // wall-clock budget of the run in seconds (0 = none): a probe at the
                                       // start fixes max_steps so the schedule ends when the budget does
  double target_accuracy = 0;          // stop (and save) once validation masked-LM accuracy reaches it (0 = off)
  double lr = 5e-4;                    // peak learning rate
  int64_t warmup_steps = 200;          // linear warmup from 0 to lr
  std::string schedule = "linear";     // "linear" | "cosine" | "constant" (after warmup)
  double min_lr_ratio = 0.0;           // floor of the decay, as a fraction of lr
  double weight_decay = 0.01;          // AdamW decoupled decay; never on biases or LayerNorm
  std::vector<double> adam_betas = {0.9, 0.98};
  double adam_eps = 1e-6;
  double clip_grad_norm = 1.0;         // global L2 norm; 0 = no clipping
  std::string precision = "auto";      // "auto" (bf16 on CUDA and on CPUs with native bf16, else fp32) |
                                       // "fp32" | "bf16" (autocast, CPU and CUDA) | "fp16" (CUDA)
  uint64_t seed = 42;                  // init, shuffling, masking and dropout streams derive from it
  int max_bad_steps = 5;               // consecutive NaN/Inf steps tolerated before stopping
  std::string init_from;               // a Hugging Face BERT dir (config.json + model.safetensors) to start from
};

struct CheckpointOptions {
  std::filesystem::path dir = "runs/run";  // the run dir: config, metrics.jsonl, log, step-*/
  int64_t every = 500;                     // save every N optimizer steps (and at the end)
  int keep_last = 3;                       // older step-* dirs are removed; 0 = keep all
  std::string resume = "auto";             // "auto" (latest valid if any) | "never" | a checkpoint dir
};

struct RuntimeOptions {
  std::string device = "auto";   // "auto" | "cpu" | "cuda" | "cuda:N"
  int threads = 0;               // intra-op CPU threads; 0 = all cores
  int64_t log_every = 10;        // a metrics line every N steps
  int64_t eval_every = 500;      // validation every N steps (0 = only at the end)
  int64_t eval_max_batches = 0;  // cap on validation batches (0 = the whole validation set)
  int64_t stop_after_steps = 0;  // end this invocation (with a checkpoint) after N steps; 0 = run to max_steps
  std::string attention_backend = "auto";  // CUDA SDPA kernels: "auto" (flash, else memory-efficient, else math;
                                           // never cuDNN) | "flash" | "efficient" | "cudnn" | "math"
  bool tf32 = true;                        // CUDA: fp32 matmuls and convolutions on TF32 tensor cores
  std::string cuda_sync_debug = "off";     // CUDA: "off" | "warn" | "error" on a host-device sync inside a step
  std::string backend = "auto";            // data-parallel process group: "auto" (nccl on CUDA, gloo on CPU) | "gloo" | "nccl"
  int dist_timeout_s = 300;                // rendezvous and collective timeout, seconds
  bool grad_sync_overlap = true;           // start each gradient bucket's all-reduce during the backward
                                           // (false: all after it -- the baseline scripts/bench_dist.sh measures)
  bool tensorboard = true;                 // RUN/tensorboard/events.out.tfevents.*: metrics.jsonl's scalars
};

// "600", "90s", "10m", "2h", "1h30m", "1.5h" -> seconds. Throws Error(kUsage) with `what` on anything else.
double parse_duration_s(const std::string& text, const std::string& what);

// The masking every accuracy is scored with (validation in the loop, bert-eval's default, the
// time-to-accuracy thresholds): 15 % of tokens, 80 % [MASK] / 10 % random / 10 % unchanged.
data::MaskingOptions standard_eval_masking();
bool same_masking(const data::MaskingOptions& a, const data::MaskingOptions& b);

struct RunConfig {
  model::BertConfig model;
  data::DataOptions data;
  data::MaskingOptions masking;
  TrainingOptions training;
  CheckpointOptions checkpoint;
  RuntimeOptions runtime;
};

// Parses a config JSON object. `source` names the file in messages. Relative paths in `data` and
// `checkpoint.dir` are resolved against `base_dir` (the config file's directory is NOT used: paths
// are relative to the working directory, as users type them). Throws Error(kUsage).
RunConfig parse_run_config(const nlohmann::json& j, const std::string& source);
// Reads and parses a config file (missing file / invalid JSON with line:column: Error(kUsage)).
RunConfig load_run_config(const std::filesystem::path& path,
                          const std::vector<std::string>& overrides = {});
// Applies "section.key=value" to a config JSON (value parsed as JSON, else taken as a string).
void apply_override(nlohmann::json& j, const std::string& assignment);
// The fully resolved config (every key, defaults filled in), for the run dir and checkpoints.
nlohmann::json to_json(const RunConfig& c);
// Checks cross-section constraints: max_seq_len <= max_position_embeddings, files exist, etc.
void validate(const RunConfig& c, const std::string& source);

}  // namespace bert::run
