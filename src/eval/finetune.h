// `bert-eval finetune`: what a pre-trained model is worth on a labelled task (BERT paper section 4).
// A copy of the checkpoint's encoder gets transformers' BertForSequenceClassification head and is
// fine-tuned (AdamW, linear warmup over the first 10% of the steps then linear decay, dropout on,
// gradient clipping) on a training file, and scored on a test file after every epoch. The
// checkpoint is never written. Options: a frozen-encoder probe, K seeds (mean and standard
// deviation), the same recipe from a randomly initialised encoder (what pre-training bought), every
// checkpoint of a run, and the fine-tuned model saved as a transformers directory.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "eval/classification_metrics.h"
#include "eval/labelled_data.h"

namespace bert::eval {

struct FinetuneOptions {
  std::filesystem::path train_file, test_file;
  LabelledColumns columns;
  int epochs = 4;
  // Peak learning rates to choose from. One rate: trained on the whole training file. Several (GLUE
  // practice): per seed, one run per rate on the training file minus a stratified dev split
  // (dev_ratio), the rate with the best last-epoch dev accuracy wins, and only that rate's run on
  // the whole training file is scored on the test file. The default spans what BERT-base (3e-5, the
  // BERT paper's range) to bert-tiny (3e-4; small models want higher rates) fine-tune best at.
  std::vector<double> lrs = {3e-5, 1e-4, 3e-4};
  double dev_ratio = 0.1;           // share of each label's training examples held out to choose the rate
  int batch_size = 32;
  int eval_batch_size = 128;
  int max_seq_len = 128;            // [CLS] A [SEP] (B [SEP]), truncated longest-first
  double warmup_ratio = 0.1;        // warmup steps = ceil(ratio * total steps)
  double weight_decay = 0.01;       // AdamW, never on biases and LayerNorm
  double clip_grad_norm = 1.0;
  uint64_t seed = 42;               // run i uses seed + i
  int seeds = 1;                    // runs per model
  bool probe = false;               // frozen encoder; pooler + classifier trained
  bool baseline = false;            // also from a randomly initialised encoder of the same shape
  std::string precision = "fp32";   // "fp32" | "bf16" | "fp16" (CUDA)
  std::filesystem::path output_model;  // save the first seed's fine-tuned model (last epoch) here
  bool progress = true;             // a live progress line / periodic log lines
};

// One epoch's figures.
struct EpochResult {
  int epoch = 0;                 // 1-based
  double train_loss = 0;         // mean cross-entropy over the epoch's training examples
  ClassificationMetrics test;    // on the test file after the epoch
  double train_examples_per_s = 0;
  double test_examples_per_s = 0;
  nlohmann::json to_json() const;
};

// One fine-tuning run (one seed, one initialisation).
struct RunResult {
  uint64_t seed = 0;
  double lr = 0;                 // the rate this run trained at
  nlohmann::json lr_search;      // with several rates: [{"lr", "dev_accuracy"}...] that chose it, else null
  std::vector<EpochResult> epochs;
  int best = 0;                  // index into epochs of the highest test accuracy (earliest on a tie)
  double seconds = 0;
  const EpochResult& last() const { return epochs.back(); }
  nlohmann::json to_json() const;
};

// Runs of one initialisation (pre-trained or random) over the seeds, and their spread.
struct SeedSummary {
  std::vector<RunResult> runs;
  MeanStd accuracy, macro_f1;            // last epoch
  MeanStd best_accuracy, best_macro_f1;  // best epoch of each run
  double train_examples_per_s = 0, test_examples_per_s = 0;  // means over runs and epochs
  nlohmann::json to_json() const;
};

// One model (checkpoint) fine-tuned, and optionally its random-init baseline.
struct FinetuneReport {
  std::filesystem::path checkpoint;  // the resolved model dir
  int64_t step = -1;                 // -1 for a Hugging Face dir
  SeedSummary pretrained;
  bool has_baseline = false;
  SeedSummary baseline;
  nlohmann::json to_json() const;
};

// The task both files make: examples, label names and ids, shared by every model fine-tuned on it.
struct LabelledTask {
  LabelledFile train, test;
  std::vector<std::string> labels;
  std::vector<int64_t> train_labels, test_labels;
  nlohmann::json to_json() const;  // files, formats, sizes, labels and their counts
};
// Reads and checks both files (label set from the training file; see labelled_data.h).
LabelledTask load_task(const FinetuneOptions& o);

// Fine-tunes the model at `model_path` (checkpoint, run or Hugging Face dir) on `task` on `device`.
// Throws Error(kUsage) for bad options, Error(kInput) for an unusable model dir, Error(kIo) when the
// output model cannot be written (an existing non-empty --output-model dir is refused before any
// training).
FinetuneReport finetune(const std::filesystem::path& model_path, const LabelledTask& task, const FinetuneOptions& o,
                        const torch::Device& device);

// {"task", "settings", "models": [FinetuneReport::to_json()...]}.
nlohmann::json finetune_json(const LabelledTask& task, const FinetuneOptions& o, const torch::Device& device,
                             const std::vector<FinetuneReport>& reports);
// The readable report: one row per model (accuracy and macro-F1, mean ± std over seeds, last and
// best epoch; the baseline and the gain when run), then for the last model's first run the
// per-class scores, the confusion matrix and the speed.
std::string format_finetune(const LabelledTask& task, const FinetuneOptions& o,
                            const std::vector<FinetuneReport>& reports);

// Checks option ranges: Error(kUsage) naming the flag.
void validate(const FinetuneOptions& o);

}  // namespace bert::eval
