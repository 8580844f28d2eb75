// bert-eval: masked-LM metrics of a checkpoint (or of every checkpoint of a run) on validation files,
// and fill-mask predictions. Thin main: parse flags into eval::EvalOptions, call the library, map
// errors to exit codes (0 ok, 1 failure, 2 usage).
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <iostream>

#include "cli/report_exception.h"
#include "eval/checkpoint_loader.h"
#include "eval/evaluator.h"
#include "eval/fill_mask.h"
#include "eval/finetune.h"
#include "run/config.h"
#include "run/device.h"
#include "util/atomic_file.h"
#include "util/allocator.h"
#include "util/error.h"
#include "util/log.h"

namespace {

namespace eval = bert::eval;
using bert::util::usage_error;

void emit(const std::string& text, const std::string& output) {
  if (output.empty()) {
    std::cout << text << std::flush;
  } else {
    bert::util::write_file_atomic(output, text);
    bert::util::log_info("wrote " + output);
  }
}

int fill_mask(const std::string& checkpoint, std::vector<std::string> texts, int top_k, bool json,
              const torch::Device& device, const std::string& precision) {
  if (checkpoint.empty()) throw usage_error("fill-mask needs --checkpoint DIR");
  if (texts.empty()) {  // one text per line on stdin
    for (std::string line; std::getline(std::cin, line);) {
      if (line.find_first_not_of(" \t\r") != std::string::npos) texts.push_back(line);
    }
  }
  if (texts.empty()) throw usage_error("fill-mask needs a text with [MASK] (as an argument or on stdin)");
  eval::LoadedModel model = eval::load_model(checkpoint, device);
  eval::FillMask filler(model, device, precision);
  nlohmann::json all = nlohmann::json::array();
  for (const auto& text : texts) {
    eval::FillMaskResult r = filler.predict(text, top_k);
    if (json) all.push_back(r.to_json());
    else std::cout << r.format();
  }
  if (json) std::cout << all.dump(2) << "\n";
  return 0;
}

// Fine-tunes one model, or every checkpoint of a run (oldest first), and prints the report.
int finetune(const std::string& checkpoint, bool all_checkpoints, eval::FinetuneOptions o, bool json,
             const std::string& output, const torch::Device& device, const std::string& precision) {
  o.precision = bert::run::resolve_precision(precision, device, "--precision");
  eval::validate(o);
  if (all_checkpoints && !o.output_model.empty()) {
    throw usage_error("--output-model saves one model: use it with --checkpoint DIR, not --all-checkpoints");
  }
  const eval::LabelledTask task = eval::load_task(o);
  std::vector<std::filesystem::path> models = {checkpoint};
  if (all_checkpoints) models = eval::list_checkpoints(checkpoint);
  std::vector<eval::FinetuneReport> reports;
  for (const auto& m : models) reports.push_back(eval::finetune(m, task, o, device));
  emit(json ? eval::finetune_json(task, o, device, reports).dump(2) + "\n" : eval::format_finetune(task, o, reports),
       output);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bert::util::tune_allocator();
  CLI::App app{
      "bert-eval: masked-LM loss, top-1/top-5 accuracy, perplexity (and NSP accuracy) of a BERT model on\n"
      "validation files, per file and overall, with deterministic masking; and fill-mask predictions.\n"
      "Examples:\n"
      "  bert-eval --checkpoint runs/mini --data corpus/valid.txt            # the run's latest checkpoint\n"
      "  bert-eval --checkpoint runs/mini/step-0000500 --data a.txt b.txt --json\n"
      "  bert-eval --all-checkpoints runs/mini --data corpus/valid.txt --json --output curve.json\n"
      "  bert-eval fill-mask --checkpoint runs/mini \"Natura [MASK] najpiękniejsze obrazy.\"\n"
      "  bert-eval finetune --checkpoint runs/mini --train train.tsv --test test.tsv --seeds 3 --baseline"};
  std::string checkpoint, all_checkpoints, output, precision = "auto", device_name = "auto", cache_dir;
  std::vector<std::string> files;
  eval::EvalOptions o;
  bool json = false, verbose = false;
  int threads = 0;
  app.add_option("--checkpoint,-c", checkpoint, "a checkpoint dir, a run dir (its latest valid checkpoint) "
                 "or a Hugging Face BERT dir (config.json, model.safetensors, vocab.txt)");
  app.add_option("--all-checkpoints", all_checkpoints, "evaluate every step-* checkpoint of this run dir");
  app.add_option("--data,-d", files, "validation files (BERT text or JSONL, .gz ok)");
  app.add_flag("--json", json, "print JSON instead of a table");
  app.add_option("--output,-o", output, "write the table/JSON to this file instead of stdout");
  app.add_option("--seed", o.seed, "masking seed; the training seed reproduces training's validation numbers")
      ->capture_default_str();
  // Scoring masking: BERT's 15 % / 80-10-10 unless changed, whatever the checkpoint trained with.
  const bert::data::MaskingOptions standard = bert::run::standard_eval_masking();
  bert::data::MaskingOptions masking = standard;
  app.add_option("--mask-prob", masking.mask_prob, "share of tokens scored (standard scoring: 0.15)")->capture_default_str();
  app.add_option("--mask-token-prob", masking.mask_token_prob, "of those, replaced by [MASK]")->capture_default_str();
  app.add_option("--random-token-prob", masking.random_token_prob, "of those, replaced by a random token")
      ->capture_default_str();
  app.add_flag("--whole-word", masking.whole_word, "choose all pieces of a word together");
  auto* checkpoint_masking = app.add_flag("--checkpoint-masking", o.checkpoint_masking,
                                          "score with the masking the checkpoint trained with instead");
  for (const char* f : {"--mask-prob", "--mask-token-prob", "--random-token-prob", "--whole-word"}) {
    checkpoint_masking->excludes(app.get_option(f));
  }
  app.add_option("--batch-size", o.batch_size, "sequences per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--precision", precision, "auto (bf16 on CUDA, fp32 on CPU), fp32, bf16 or fp16 (CUDA)")
      ->capture_default_str();
  app.add_option("--max-seq-len", o.max_seq_len, "tokens per sequence (default: the checkpoint's, else 128)");
  app.add_flag("--nsp", o.nsp, "pack sentence pairs (nsp-pairs) and report NSP accuracy");
  app.add_option("--max-batches", o.max_batches, "at most N batches per file (0 = all)");
  app.add_option("--cache-dir", cache_dir, "token shard cache (default: <run dir>/cache, else a temp dir)");
  app.add_option("--device", device_name, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", threads, "intra-op CPU threads (0 = all cores)");
  app.add_flag("--verbose,-v", verbose, "debug logging");
  app.set_version_flag("--version", std::string("bert-eval ") + BERT_VERSION);

  CLI::App* fill = app.add_subcommand("fill-mask", "top-k candidates for each [MASK] of a text");
  std::string fill_checkpoint;
  std::vector<std::string> texts;
  int top_k = 5;
  bool fill_json = false;
  fill->add_option("--checkpoint,-c", fill_checkpoint, "checkpoint, run or Hugging Face BERT dir")->required();
  fill->add_option("--top-k,-k", top_k, "candidates per mask")->capture_default_str();
  fill->add_flag("--json", fill_json, "print JSON");
  fill->add_option("--device", device_name, "auto, cpu, cuda or cuda:N");
  fill->add_option("--precision", precision, "auto (bf16 on CUDA, fp32 on CPU), fp32, bf16 or fp16 (CUDA)");
  // Texts are taken verbatim from the remaining arguments: a declared positional would let CLI11 read
  // "[MASK] ..." as its bracketed-list syntax and strip the brackets.
  fill->allow_extras();
  fill->footer("TEXT...: texts with [MASK]; none = one text per line on stdin");
  CLI::App* ft = app.add_subcommand(
      "finetune", "fine-tune a copy of a checkpoint on a labelled training file (transformers'\n"
      "BertForSequenceClassification head: pooler -> dropout -> linear; AdamW, 10% linear warmup then\n"
      "linear decay) and score it on a test file after every epoch; the checkpoint is not changed");
  eval::FinetuneOptions ft_o;
  std::string ft_checkpoint, ft_output, ft_output_model;
  bool ft_all = false, ft_json = false;
  std::string ft_train, ft_test;
  ft->add_option("--checkpoint,-c", ft_checkpoint, "checkpoint, run (its latest valid checkpoint) or Hugging Face BERT dir")
      ->required();
  ft->add_flag("--all-checkpoints", ft_all, "fine-tune every step-* checkpoint of the run dir given by --checkpoint "
               "(one row each: task quality over pre-training)");
  ft->add_option("--train", ft_train, "labelled training file: .tsv (header, or headerless label<TAB>text), .csv "
                 "(header) or .jsonl; the label set comes from it")->required();
  ft->add_option("--test", ft_test, "labelled test file, same forms")->required();
  ft->add_option("--text-column", ft_o.columns.text, "column / key of the text")->capture_default_str();
  ft->add_option("--text-pair-column", ft_o.columns.text_pair, "column / key of the second text (sentence-pair "
                 "tasks: [CLS] A [SEP] B [SEP])");
  ft->add_option("--label-column", ft_o.columns.label, "column / key of the label")->capture_default_str();
  ft->add_option("--epochs", ft_o.epochs, "passes over the training file")->capture_default_str()->check(CLI::PositiveNumber);
  ft->add_option("--lr", ft_o.lrs, "peak learning rate, or several (1e-4,3e-4 or 1e-4 3e-4): then chosen per seed by "
                 "accuracy on a stratified dev split of the training file, and only that rate's run is scored on "
                 "the test file (probes learn faster with ~1e-3)")
      ->delimiter(',')
      ->capture_default_str();
  ft->add_option("--dev-ratio", ft_o.dev_ratio, "share of each label's training examples held out to choose among "
                 "several --lr")->capture_default_str();
  ft->add_option("--batch-size", ft_o.batch_size, "training examples per step")->capture_default_str()->check(CLI::PositiveNumber);
  ft->add_option("--eval-batch-size", ft_o.eval_batch_size, "test examples per forward pass")->capture_default_str()
      ->check(CLI::PositiveNumber);
  ft->add_option("--max-seq-len", ft_o.max_seq_len, "tokens per example with [CLS]/[SEP] (longer texts are "
                 "truncated, the longer text first)")->capture_default_str();
  ft->add_option("--warmup-ratio", ft_o.warmup_ratio, "share of the steps spent warming up")->capture_default_str();
  ft->add_option("--weight-decay", ft_o.weight_decay, "AdamW weight decay (not on biases or LayerNorm)")->capture_default_str();
  ft->add_option("--seed", ft_o.seed, "seed of the first run; run i uses seed + i")->capture_default_str();
  ft->add_option("--seeds", ft_o.seeds, "runs with different seeds: mean and standard deviation")->capture_default_str()
      ->check(CLI::PositiveNumber);
  ft->add_flag("--probe", ft_o.probe, "freeze the encoder; train only the head (pooler + classifier)");
  ft->add_flag("--baseline", ft_o.baseline, "also fine-tune a randomly initialised encoder of the same shape "
               "(the gain is what pre-training bought)");
  ft->add_option("--output-model", ft_output_model, "save the first seed's fine-tuned model (last epoch) here as a "
                 "transformers BertForSequenceClassification dir with tokenizer files");
  ft->add_flag("--json", ft_json, "print JSON");
  ft->add_option("--output,-o", ft_output, "write the report to this file instead of stdout");
  ft->add_option("--device", device_name, "auto, cpu, cuda or cuda:N");
  ft->add_option("--precision", precision, "auto (bf16 on CUDA and on CPUs with native bf16, else fp32), fp32, "
                 "bf16 or fp16 (CUDA)");
  ft->add_option("--threads", threads, "intra-op CPU threads (0 = all cores)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help/--version: 0; bad flags: usage error
  }

  try {
    bert::util::init_logging(verbose ? bert::util::LogLevel::kDebug : bert::util::LogLevel::kInfo);
    if (threads > 0) torch::set_num_threads(threads);
    const torch::Device device = bert::run::resolve_device(device_name);
    if (ft->parsed()) {
      if (device.is_cuda()) bert::run::configure_cuda_math(/*tf32=*/true, "auto");
      ft_o.train_file = ft_train;
      ft_o.test_file = ft_test;
      ft_o.output_model = ft_output_model;
      return finetune(ft_checkpoint, ft_all, ft_o, ft_json, ft_output, device, precision);
    }
    if (precision == "auto") precision = device.is_cuda() ? "bf16" : "fp32";
    if (precision != "fp32" && precision != "bf16" && precision != "fp16") {
      throw usage_error("--precision " + precision + ": use auto, fp32, bf16 or fp16 (CUDA)");
    }
    if (device.is_cuda()) bert::run::configure_cuda_math(/*tf32=*/true, "auto");
    if (fill->parsed()) {
      texts = fill->remaining();
      for (const auto& t : texts) {
        if (t.size() > 1 && t[0] == '-' && t.find(' ') == std::string::npos) {
          throw usage_error("fill-mask: unknown option " + t + " (see bert-eval fill-mask --help)");
        }
      }
      return fill_mask(fill_checkpoint, texts, top_k, fill_json, device, precision);
    }

    if (checkpoint.empty() == all_checkpoints.empty()) {
      throw usage_error("pass exactly one of --checkpoint DIR and --all-checkpoints RUN_DIR (see --help)");
    }
    if (files.empty()) throw usage_error("--data FILE... is required: the validation files to evaluate on");
    o.files.assign(files.begin(), files.end());
    if (!bert::run::same_masking(masking, standard)) o.masking = masking;
    o.precision = precision;
    o.cache_dir = cache_dir;
    if (!all_checkpoints.empty()) {
      std::vector<eval::EvalReport> reports = eval::evaluate_run(all_checkpoints, o, device);
      emit(json ? eval::run_json(all_checkpoints, reports).dump(2) + "\n" : eval::format_table(reports), output);
      return 0;
    }
    eval::LoadedModel model = eval::load_model(checkpoint, device);
    bert::util::log_info("evaluating " + model.dir.string() +
                         (model.step >= 0 ? " (step " + std::to_string(model.step) + ")" : "") + " on " +
                         bert::run::describe_device(device) + ", " + precision);
    eval::EvalReport report = eval::evaluate(model, o, device);
    emit(json ? report.to_json().dump(2) + "\n" : eval::format_table({report}), output);
    return 0;
  } catch (...) {
    return bert::cli::report_exception();
  }
}
