// bert-train: pre-trains a BERT encoder from a JSON run config. Thin main: parse flags, load the
// typed config, call the library, map errors to exit codes (0 ok, 1 failure, 2 usage/config,
// 130/143 stopped by SIGINT/SIGTERM after a clean save).
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <fstream>
#include <iostream>

#include "cli/report_exception.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "run/config.h"
#include "train/trainer.h"
#include "util/allocator.h"
#include "util/error.h"
#include "util/log.h"
#include "util/signals.h"

namespace {

int dump_batches(const bert::run::RunConfig& cfg, int n, const std::string& output) {
  auto vocab = std::make_shared<const bert::wordpiece::Vocab>(bert::wordpiece::Vocab::load(cfg.data.vocab_dir));
  auto dataset = bert::data::prepare_dataset(cfg.data.train_files, vocab, cfg.data, cfg.training.seed);
  bert::data::LoaderOptions lo;
  lo.batch_size = cfg.training.batch_size;
  lo.seed = cfg.training.seed;
  lo.prefetch = 0;
  bert::data::Loader loader(dataset, lo, cfg.masking);
  std::ofstream out(output);
  if (!out) throw bert::util::io_error("cannot write " + output);
  bert::data::dump_batches_jsonl(loader, *vocab, n, out);
  bert::util::log_info("wrote " + std::to_string(n) + " batches to " + output);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bert::util::tune_allocator();
  CLI::App app{
      "bert-train: pre-train a BERT encoder (masked LM, optionally NSP) from a JSON run config.\n"
      "Examples:\n"
      "  bert-train --config configs/quickstart.json\n"
      "  bert-train --config configs/bert-mini.json --set training.max_steps=500 --set runtime.device=cpu\n"
      "  bert-train --config run.json --dump-batches 2 --output batches.jsonl   # inspect masking\n"
      "Interrupt with Ctrl-C: the current step finishes, a checkpoint is saved, and a rerun resumes."};
  std::string config_path, output, resume, device;
  std::vector<std::string> overrides;
  int dump = 0;
  int64_t stop_after = 0;
  bool verbose = false;
  app.add_option("--config,-c", config_path, "run config JSON (sections model, data, masking, training, "
                 "checkpoint, runtime; see configs/)")->required();
  app.add_option("--set", overrides, "override a config key: section.key=value (repeatable)");
  app.add_option("--resume", resume, "auto (latest valid checkpoint in the run dir), never, or a checkpoint dir");
  app.add_option("--device", device, "auto, cpu, cuda or cuda:N (overrides runtime.device)");
  app.add_option("--dump-batches", dump, "write the first N batches as the model sees them, then exit");
  app.add_option("--output,-o", output, "output file for --dump-batches (JSONL)");
  app.add_option("--stop-after", stop_after, "stop this invocation after N steps with a checkpoint (resume later)");
  app.add_flag("--verbose,-v", verbose, "debug logging");
  app.set_version_flag("--version", std::string("bert-train ") + BERT_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help/--version: 0; bad flags: usage error
  }

  try {
    bert::util::init_logging(verbose ? bert::util::LogLevel::kDebug : bert::util::LogLevel::kInfo);
    if (!resume.empty()) overrides.push_back("checkpoint.resume=" + resume);
    if (!device.empty()) overrides.push_back("runtime.device=" + device);
    if (stop_after < 0) throw bert::util::usage_error("--stop-after must be a positive number of steps");
    if (stop_after > 0) overrides.push_back("runtime.stop_after_steps=" + std::to_string(stop_after));
    bert::run::RunConfig cfg = bert::run::load_run_config(config_path, overrides);
    if (dump > 0) {
      if (output.empty()) throw bert::util::usage_error("--dump-batches needs --output FILE.jsonl");
      return dump_batches(cfg, dump, output);
    }
    bert::train::TrainSummary s = bert::train::run_training(cfg, config_path);
    if (s.stop_signal != 0) {
      bert::util::log_warn("stopped at step " + std::to_string(s.step) + "; checkpoint " +
                           s.last_checkpoint.string() + ". To resume: bert-train --config " + config_path +
                           " (checkpoint.resume = auto picks it up).");
      return bert::util::exit_code_for_signal(s.stop_signal);
    }
    bert::util::log_info("done: " + std::to_string(s.step) + " steps; final checkpoint " + s.last_checkpoint.string());
    return 0;
  } catch (...) {
    return bert::cli::report_exception();
  }
}
