// The training loop. Reads top to bottom like the pseudo-code of a paper: set up, resume, then
// for each step: masked batches -> forward -> loss -> backward -> clip -> AdamW; log, validate, save.
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "data/batch.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "model/bert_model.h"
#include "model/weights.h"
#include "train/budget.h"
#include "train/checkpoint.h"
#include "run/device.h"
#include "train/distributed.h"
#include "util/dir_lock.h"
#include "run/loss_scaler.h"
#include "run/optimizer.h"
#include "run/schedule.h"
#include "train/sync_debug.h"
#include "train/train_step.h"
#include "run/mlm_metrics.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/rng.h"
#include "util/signals.h"

namespace bert::train {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string fmt(const char* format, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, a);
  return buf;
}

// The step's figures summed on the device since the last log line, plus the run's NaN-guard
// counters; read back (one device->host copy) only when the loop logs, shows progress or saves.
class DeviceTally {
 public:
  explicit DeviceTally(const torch::Device& device)
      : window_(torch::zeros({kWindowFields}, torch::TensorOptions().dtype(torch::kFloat64).device(device))),
        guard_(torch::zeros({kGuardFields}, window_.options())) {}

  void add(const StepResult& r) {  // device ops only
    torch::NoGradGuard no_grad;
    const auto finite = torch::isfinite(r.loss);
    const auto zero = torch::zeros_like(r.loss);
    window_.add_(torch::stack({torch::where(finite, r.loss, zero), torch::where(finite, r.mlm_loss, zero),
                               torch::where(finite, r.nsp_loss, zero), finite.to(torch::kFloat32),
                               torch::where(torch::isfinite(r.grad_norm), r.grad_norm, zero),
                               r.correct.to(torch::kFloat32)})
                     .to(torch::kFloat64));
    // [nonfinite total, skipped total, current streak of nonfinite steps, longest streak]
    const auto bad = r.nonfinite.to(torch::kFloat64);
    auto streak = (guard_[2] + bad) * bad;
    guard_.copy_(torch::stack({guard_[0] + bad, guard_[1] + r.skipped.to(torch::kFloat64), streak,
                               torch::maximum(guard_[3], streak)}));
  }
  struct Read {
    double loss = 0, mlm_loss = 0, nsp_loss = 0, loss_steps = 0, grad_norm = 0, correct = 0;
    double nonfinite = 0, skipped = 0, streak = 0, longest_streak = 0;
  };
  Read read() const {  // the one synchronising call
    const auto host = torch::cat({window_, guard_}).cpu();
    const double* v = host.data_ptr<double>();
    return {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]};
  }
  void reset_window() { window_.zero_(); }

 private:
  static constexpr int64_t kWindowFields = 6, kGuardFields = 4;
  torch::Tensor window_, guard_;  // [6] fp64, [4] fp64 on the device
};

// Host-side counts of the window (known without reading the device).
struct Window {
  int64_t steps = 0, predictions = 0, tokens = 0, sequences = 0;
  GradSyncStats sync;  // summed over the window's steps (data-parallel)
  Clock::time_point start = Clock::now();
};

model::BertConfig resolve_model_config(run::RunConfig& cfg, const wordpiece::Vocab& vocab, const std::string& source) {
  model::BertConfig m = cfg.model;
  if (!cfg.training.init_from.empty()) {
    fs::path hf = fs::path(cfg.training.init_from) / "config.json";
    m = model::BertConfig::from_hf_json(util::parse_json_file(hf, util::ErrorKind::kInput), hf.string());
    m.hidden_dropout = cfg.model.hidden_dropout;
    m.attention_dropout = cfg.model.attention_dropout;
    util::log_info("starting from the Hugging Face model in " + cfg.training.init_from +
                   " (its config.json replaces the model section)");
  }
  int declared = cfg.training.init_from.empty() ? cfg.model.vocab_size : m.vocab_size;
  if (declared != 0 && declared != vocab.size()) {
    throw util::usage_error(source + ": the model has vocab_size " + std::to_string(declared) + " but " +
                            cfg.data.vocab_dir.string() + " holds " + std::to_string(vocab.size()) +
                            " tokens; use the vocabulary the model was built with (or drop model.vocab_size)");
  }
  m.vocab_size = vocab.size();
  m.pad_token_id = vocab.pad_id();
  m.validate();
  if (cfg.data.max_seq_len > m.max_position_embeddings) {
    throw util::usage_error(source + ": data.max_seq_len = " + std::to_string(cfg.data.max_seq_len) +
                            " exceeds the model's max_position_embeddings = " +
                            std::to_string(m.max_position_embeddings));
  }
  cfg.model = m;
  return m;
}

void prepare_run_dir(const fs::path& run_dir) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec || !fs::is_directory(run_dir)) {
    throw util::io_error("cannot create the run directory " + run_dir.string() + ": " + ec.message() +
                         "; set checkpoint.dir to a writable location");
  }
  fs::path probe = run_dir / ".write-test";
  std::ofstream out(probe);
  if (!out) {
    throw util::io_error("the run directory " + run_dir.string() +
                         " is not writable; set checkpoint.dir to a writable location");
  }
  out.close();
  fs::remove(probe, ec);
}

// Appends one JSON object per line to metrics.jsonl, flushed at once (a crash loses nothing logged).
class MetricsLog {
 public:
  explicit MetricsLog(const fs::path& path) : out_(path, std::ios::app) {
    if (!out_) throw util::io_error("cannot open " + path.string() + " for appending");
  }
  void write(const nlohmann::json& j) {
    out_ << j.dump() << '\n';
    out_.flush();
  }

 private:
  std::ofstream out_;
};

// The checkpoint to resume from: "auto" -> the newest valid one in the run dir (if any); "never";
// a checkpoint dir; or a run dir (-> its newest valid checkpoint). Checked before any data work.
std::optional<fs::path> resolve_resume(const std::string& resume, const fs::path& run_dir, const std::string& source) {
  if (resume == "never") return std::nullopt;
  if (resume == "auto") return run::find_latest_checkpoint(run_dir);
  std::error_code ec;
  const fs::path p(resume);
  if (!fs::is_directory(p, ec)) {
    throw util::usage_error(source + ": checkpoint.resume = \"" + resume +
                            "\" is not auto, never, or an existing checkpoint or run directory");
  }
  if (!fs::exists(p / "manifest.json", ec)) {
    auto latest = run::find_latest_checkpoint(p);
    if (!latest) throw util::input_error("cannot resume from " + resume + ": it holds no valid checkpoint");
    return latest;
  }
  std::string why = run::verify_checkpoint(p);
  if (!why.empty()) throw util::input_error("cannot resume from " + resume + ": " + why);
  return p;
}

// Drops metrics.jsonl rows logged after `step` (a resume from an earlier checkpoint replays them).
void drop_metrics_after(const fs::path& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  bool dropped = false;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      if (nlohmann::json::parse(line).value("step", int64_t{0}) > step) {
        dropped = true;
        continue;
      }
    } catch (const nlohmann::json::exception&) {
      dropped = true;  // a torn last line from a crash
      continue;
    }
    kept += line + "\n";
  }
  if (dropped) util::write_file_atomic(path, kept);
}

}  // namespace

TrainSummary run_training(const run::RunConfig& config_in, const std::string& source) {
  // ---- set up: config, device, run dir, vocabulary, model, optimizer, data ----
  const auto invocation_start = Clock::now();  // a time budget counts the set-up too
  run::RunConfig cfg = config_in;
  validate(cfg, source);
  util::install_stop_handlers();
  // Data-parallel when launched by torchrun/srun: rank 0 writes, every rank trains on its slice.
  const DistEnv dist_env = read_dist_env();
  const bool writer = dist_env.rank == 0;
  if (!writer) util::set_log_prefix("rank " + std::to_string(dist_env.rank), util::LogLevel::kWarn);
  if (cfg.runtime.threads > 0) {
    torch::set_num_threads(cfg.runtime.threads);
  } else if (dist_env.local_world_size > 1) {  // the cores shared by the processes of this node
    torch::set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / dist_env.local_world_size));
  }
  std::string device_name = cfg.runtime.device;
  if (dist_env.distributed() && (device_name == "cuda" || (device_name == "auto" && torch::cuda::is_available()))) {
    device_name = "cuda:" + std::to_string(dist_env.local_rank);  // one GPU per process
  }
  const torch::Device device = run::resolve_device(device_name);
  if (device.is_cuda()) run::configure_cuda_math(cfg.runtime.tf32, cfg.runtime.attention_backend);
  cfg.training.precision = run::resolve_precision(cfg.training.precision, device, source + ": training.precision");
  std::unique_ptr<Distributed> dist;
  if (dist_env.distributed()) {
    dist = Distributed::connect(dist_env, cfg.runtime.backend, std::chrono::seconds(cfg.runtime.dist_timeout_s), device);
  }
  const fs::path run_dir = cfg.checkpoint.dir;
  // One writer per run dir: a second bert-train on it (same config started twice) stops here, before
  // it logs into the first one's train.log or cleans up the first one's save in progress.
  std::optional<util::DirLock> run_lock;
  std::error_code exists_ec;
  const bool fresh_run_dir = !fs::exists(run_dir, exists_ec);  // this start creates it
  if (writer) {
    prepare_run_dir(run_dir);
    run_lock.emplace(util::DirLock::acquire(run_dir, "bert-train"));
    util::add_log_file(run_dir / "train.log");
    run::clean_stale_temporaries(run_dir);
  }
  if (dist) dist->barrier();  // the run dir exists and is clean before any rank reads it
  // A worker group torchrun restarted (--max-restarts) continues from the newest checkpoint,
  // whatever checkpoint.resume says: starting over would throw away what the group trained.
  std::string resume = cfg.checkpoint.resume;
  if (dist_env.restart_count > 0 && resume != "auto") {
    util::log_warn("torchrun restart " + std::to_string(dist_env.restart_count) + ": resuming from the newest checkpoint (checkpoint.resume = \"" + resume + "\" applies to the first start only)");
    resume = "auto";
  }
  const std::optional<fs::path> resume_from = resolve_resume(resume, run_dir, source);

  std::shared_ptr<const wordpiece::Vocab> vocab;
  try {
    vocab = std::make_shared<const wordpiece::Vocab>(wordpiece::Vocab::load(cfg.data.vocab_dir));
  } catch (const util::Error& e) {
    throw util::Error(e.kind(), source + ": data.vocab_dir = " + cfg.data.vocab_dir.string() +
                                    " is not a usable vocabulary (expected the directory written by "
                                    "`bert-vocab build`): " + e.what());
  }
  vocab->require_sequence_tokens("bert-train");
  const model::BertConfig model_config = resolve_model_config(cfg, *vocab, source);

  const run::TrainingOptions& t = cfg.training;
  // The initial weights are drawn from their own generator, seeded from training.seed.
  torch::manual_seed(util::derive_seed(t.seed, "init"));
  model::BertForPreTraining model(model_config, util::derive_seed(t.seed, "init"));
  if (!t.init_from.empty()) {
    const fs::path weights = fs::path(t.init_from) / "model.safetensors";
    if (!model::has_nsp_head(weights)) {
      util::log_warn(weights.string() + " has no pooler/NSP head (a BertForMaskedLM model): it starts from random init");
    }
    model::load_weights(model, weights, {/*allow_missing_nsp_head=*/true});
  }
  model->to(device);
  model->train();
  run::AdamW optimizer(*model, t);
  run::LossScaler scaler(t.precision == "fp16", device);

  // The token cache: rank 0 builds it, the others then map what it wrote (no race on the rename).
  std::shared_ptr<const data::Dataset> train_data, valid_data;
  for (int turn = 0; turn < (dist ? 2 : 1); ++turn) {
    if ((turn == 0) == writer) {
      train_data = data::prepare_dataset(cfg.data.train_files, vocab, cfg.data, t.seed);
      if (!cfg.data.valid_files.empty()) valid_data = data::prepare_dataset(cfg.data.valid_files, vocab, cfg.data, t.seed);
    }
    if (dist) dist->barrier();
  }
  data::LoaderOptions loader_options;
  loader_options.batch_size = t.batch_size;
  loader_options.seed = t.seed;
  loader_options.rank = dist_env.rank;
  loader_options.world_size = dist_env.world_size;
  // A config found unusable only once the data is read (an epoch smaller than the global batch) is
  // a usage error like any other: a run dir this start created is removed again (its token cache
  // holds less than one batch), so the failed start leaves nothing behind.
  auto make_loader = [&] {
    try {
      return data::Loader(train_data, loader_options, cfg.masking);
    } catch (const util::Error& e) {
      if (writer && fresh_run_dir && e.kind() == util::ErrorKind::kUsage) {
        run_lock.reset();
        std::error_code ec;
        fs::remove_all(run_dir, ec);
      }
      throw;
    }
  };
  data::Loader loader = make_loader();

  int64_t num_params = 0;
  for (const auto& p : model->parameters()) num_params += p.numel();
  util::log_info("model: " + std::to_string(model_config.num_layers) + " layers, hidden " +
                 std::to_string(model_config.hidden_size) + ", " + std::to_string(model_config.num_heads) +
                 " heads, vocab " + std::to_string(model_config.vocab_size) + " = " +
                 fmt("%.2fM", num_params / 1e6) + " parameters on " + run::describe_device(device) + ", " + t.precision);
  util::log_info(run::describe_attention(device, t.precision, t.batch_size, cfg.data.max_seq_len, model_config.num_heads,
                                    model_config.hidden_size / model_config.num_heads, model_config.attention_dropout) +
                 (device.is_cuda() ? "; runtime.attention_backend = " + cfg.runtime.attention_backend +
                                         (cfg.runtime.tf32 ? ", TF32 on" : ", TF32 off")
                                   : std::string()));
  const data::DatasetStats& ds = train_data->stats();
  util::log_info("data: " + std::to_string(ds.documents) + " documents, " + std::to_string(ds.tokens) + " tokens -> " +
                 std::to_string(ds.sequences) + " sequences of " + std::to_string(cfg.data.max_seq_len) +
                 " (packing " + fmt("%.1f%%", 100 * ds.packing_efficiency) + "); " + std::to_string(loader.batches_per_epoch()) +
                 " batches of " + std::to_string(t.batch_size) + " per epoch");

  // ---- resume: model, optimizer, loader cursor and counters from the newest valid checkpoint ----
  int64_t step = 0, tokens_seen = 0, skipped_steps = 0;
  fs::path last_checkpoint;
  nlohmann::json resumed_state;
  if (resume_from) {
    CheckpointContents c = load_checkpoint(*resume_from, model);
    optimizer.load_state(c.optimizer_state, (*resume_from / "optimizer.safetensors").string());
    if (!c.trainer_state.contains("loader") || !c.trainer_state["loader"].is_object()) {
      throw util::input_error((*resume_from / "trainer_state.json").string() +
                              ": \"loader\" (the data cursor) is missing or not an object; resume from another "
                              "checkpoint or start afresh with --resume never");
    }
    try {
      loader.restore(c.trainer_state["loader"]);
    } catch (const util::Error& e) {
      throw util::Error(e.kind(), (*resume_from / "trainer_state.json").string() + ": cannot resume: " + e.what() +
                                      ". Resume with the data.train_files, vocabulary and sequence options this run "
                                      "was started with, or start a new run (--resume never, or another checkpoint.dir)");
    }
    step = c.step;
    resumed_state = c.trainer_state;
    tokens_seen = c.trainer_state.value("tokens_seen", int64_t{0});
    skipped_steps = c.trainer_state.value("skipped_steps", int64_t{0});
    if (c.trainer_state.contains("loss_scaler")) {
      scaler.restore(c.trainer_state["loss_scaler"], (*resume_from / "trainer_state.json").string());
    }
    last_checkpoint = *resume_from;
    if (writer) {
      run::set_aside_newer_checkpoints(run_dir, step);
      drop_metrics_after(run_dir / "metrics.jsonl", step);
    }
    util::log_info("resumed from " + resume_from->string() + " at step " + std::to_string(step));
    if (t.time_budget_s == 0 && step >= t.max_steps) {
      util::log_warn("the checkpoint is already at step " + std::to_string(step) + " >= training.max_steps = " +
                     std::to_string(t.max_steps) + "; raise max_steps to train further");
    }
  }
  if (dist) {  // every replica starts from rank 0's weights
    dist->broadcast_from_rank0(model->parameters());
    util::log_info("data-parallel: " + std::to_string(dist->world_size()) + " processes (" + dist_env.source + ", " +
                   dist->backend() + "), global batch " + std::to_string(t.batch_size * dist->world_size() * t.grad_accum_steps) +
                   " = " + std::to_string(t.batch_size) + " x " + std::to_string(dist->world_size()) + " ranks x " +
                   std::to_string(t.grad_accum_steps) + " accumulation");
  }
  std::optional<MetricsLog> metrics;
  if (writer) metrics.emplace(run_dir / "metrics.jsonl");
  util::ProgressLine progress;
  std::optional<WallBudget> budget;  // set below when training.time_budget is
  auto contents_at = [&](int64_t at_step) {
    CheckpointContents c;
    c.step = at_step;
    c.optimizer_state = optimizer.state();
    c.trainer_state = {{"loader", loader.cursor()}, {"tokens_seen", tokens_seen},
                       {"skipped_steps", skipped_steps}, {"loss_scaler", scaler.state()},
                       {"run_config", to_json(cfg)}};
    if (budget) {
      c.trainer_state["budget"] = {{"budget_s", budget->budget_s()}, {"used_s", budget->used_s()},
                                   {"max_steps", t.max_steps}};
    }
    return c;
  };
  auto save = [&](int64_t at_step) {  // (the newest checkpoint is what `latest` names)
    if (!writer) {  // no rank runs ahead of a checkpoint that may fail
      dist->barrier();
      return;
    }
    last_checkpoint = save_checkpoint(run_dir, model, *vocab, contents_at(at_step));
    run::prune_checkpoints(run_dir, cfg.checkpoint.keep_last);
    progress.clear();
    util::log_info("saved checkpoint " + last_checkpoint.string());
    if (dist) dist->barrier();
  };
  // One validation pass scored with `masking`. Sharded: rank r takes batches r, r + W, ... of the
  // pass one process makes (the same masks, which depend on a batch's place in the pass), up to
  // eval_max_batches of them in all; the sums are reduced, so every rank has one process's figures.
  auto score_valid = [&](const data::MaskingOptions& masking) {
    const int world = dist ? dist->world_size() : 1;
    const int rank = dist ? dist->rank() : 0;
    data::EvalLoader stream(valid_data, t.batch_size, masking, util::derive_seed(t.seed, "valid"), rank, world);
    int64_t global_index = rank;
    const int64_t cap = cfg.runtime.eval_max_batches;
    auto next = [&](data::HostBatch& b) {
      if (cap > 0 && global_index >= cap) return false;
      global_index += world;
      return stream.next(b);
    };
    run::SumOverRanks reduce = nullptr;
    if (dist) reduce = [&](torch::Tensor& sums) { dist->sum_(sums); };
    return run::evaluate_mlm(model, next, device, t.precision, 0, reduce);
  };
  // Validation is scored with the standard masking (15 %, 80/10/10) whatever the training masking,
  // so runs with different masking compare; a different training masking is scored too. Returns the
  // standard accuracy (-1 without validation data), the same on every rank.
  const bool own_masking_differs = !run::same_masking(cfg.masking, run::standard_eval_masking());
  auto validate_now = [&](int64_t at_step) -> double {
    if (!valid_data) return -1;
    run::MlmMetrics v = score_valid(run::standard_eval_masking());
    std::optional<run::MlmMetrics> own;
    if (own_masking_differs) own = score_valid(cfg.masking);
    if (!writer) return v.accuracy;
    nlohmann::json j = v.to_json();
    j["type"] = "valid";
    j["step"] = at_step;
    j["masking"] = "standard";
    j["elapsed_s"] = std::chrono::duration<double>(Clock::now() - invocation_start).count();  // set-up included
    j["tokens_seen"] = tokens_seen;
    if (own) j["training_masking"] = own->to_json();
    if (metrics) metrics->write(j);
    progress.clear();
    util::log_info("valid step " + std::to_string(at_step) + ": loss " + fmt("%.4f", v.loss) + ", accuracy " +
                   fmt("%.4f", v.accuracy) + ", perplexity " + fmt("%.2f", v.perplexity) +
                   (v.nsp_accuracy >= 0 ? ", nsp accuracy " + fmt("%.4f", v.nsp_accuracy) : "") +
                   (own ? " (15 % masking; with the training masking: loss " + fmt("%.4f", own->loss) + ", accuracy " +
                              fmt("%.4f", own->accuracy) + ")"
                        : ""));
    return v.accuracy;
  };

  auto run_start = Clock::now();  // (after the budget's probe: the loop's own time, for ETA)
  const int64_t first_step = step;
  const int64_t skipped_before = skipped_steps;  // from the checkpoint; the tally counts this invocation
  std::unique_ptr<GradientSync> grad_sync;
  if (dist) {
    // The tied word embeddings: the decoder reads an alias leaf, whose (dense, early) gradient is
    // all-reduced during the backward; the lookup's rows are exchanged sparsely after it.
    TiedWeight tied;
    tied.weight = model->word_embeddings();
    tied.alias = tied.weight.detach().requires_grad_(true);
    model->set_decoder_alias(tied.alias);
    grad_sync = std::make_unique<GradientSync>(*dist, model->parameters(), 25 << 20, cfg.runtime.grad_sync_overlap,
                                               tied);
  }
  const StepOptions step_options{t.precision, t.clip_grad_norm, dist.get(), grad_sync.get()};
  int agreed_stop = 0;  // the stop signal, agreed by all ranks after each step
  DeviceTally tally(device);
  Window window;
  double reported_nonfinite = 0;
  TrainSummary summary;
  int64_t last_saved = resume_from ? step : -1;
  auto slice_done = [&] {
    return cfg.runtime.stop_after_steps > 0 && step - first_step >= cfg.runtime.stop_after_steps;
  };
  // Reads the tally: updates skipped_steps, warns about skipped updates, stops a diverged run.
  auto read_tally = [&] {
    const DeviceTally::Read r = tally.read();
    skipped_steps = skipped_before + static_cast<int64_t>(r.skipped);
    if (r.nonfinite > reported_nonfinite) {
      util::log_warn("step " + std::to_string(step) + ": non-finite loss or gradient; update skipped (" +
                     fmt("%.0f", r.nonfinite - reported_nonfinite) + " since the last report, " +
                     fmt("%.0f", r.streak) + " in a row now)");
      reported_nonfinite = r.nonfinite;
    }
    if (r.longest_streak >= t.max_bad_steps) {
      throw util::runtime_error("training diverged: " + fmt("%.0f", r.longest_streak) +
                                " steps in a row had a non-finite loss or gradient (seen at step " +
                                std::to_string(step) + "); lower training.lr, raise warmup_steps or use fp32. "
                                "The last good checkpoint is " + (last_checkpoint.empty() ? std::string("none") : last_checkpoint.string()));
    }
    return r;
  };
  // Progress line, and with `log_now` a metrics row and a log line, from one read of the tally.
  auto report = [&](bool log_now, double lr) {
    const DeviceTally::Read r = read_tally();
    const double window_s = std::chrono::duration<double>(Clock::now() - window.start).count();
    const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
    double eta = elapsed / static_cast<double>(step - first_step) * static_cast<double>(t.max_steps - step);
    std::string budget_text;
    if (budget) {
      eta = std::min(eta, std::max(0.0, budget->left_s()));
      budget_text = "  budget " + util::format_duration(budget->used_s()) + "/" + util::format_duration(budget->budget_s());
    }
    const double mean_loss = r.loss / std::max(1.0, r.loss_steps);
    const double acc = window.predictions ? r.correct / static_cast<double>(window.predictions) : 0.0;
    const double tok_s = static_cast<double>(window.tokens) / std::max(window_s, 1e-9);
    if (writer) progress.update("step " + std::to_string(step) + "/" + std::to_string(t.max_steps) + "  loss " +
                    fmt("%.4f", mean_loss) + "  acc " + fmt("%.3f", acc) + "  lr " + fmt("%.2e", lr) + "  |g| " +
                    fmt("%.2f", r.grad_norm / static_cast<double>(window.steps)) + "  " + fmt("%.0f tok/s", tok_s) +
                    "  ETA " + util::format_duration(eta) + budget_text);
    if (log_now) {
      nlohmann::json j = {{"type", "train"}, {"step", step}, {"loss", mean_loss},
                          {"mlm_loss", r.mlm_loss / std::max(1.0, r.loss_steps)}, {"mlm_accuracy", acc}, {"lr", lr},
                          {"grad_norm", r.grad_norm / static_cast<double>(window.steps)},
                          {"tokens_per_s", tok_s},
                          {"sequences_per_s", static_cast<double>(window.sequences) / std::max(window_s, 1e-9)},
                          {"tokens_seen", tokens_seen}, {"skipped_steps", skipped_steps}, {"elapsed_s", elapsed}};
      if (budget) {
        j["budget_used_s"] = budget->used_s();
        j["budget_left_s"] = std::max(0.0, budget->left_s());
      }
      if (model_config.type_vocab_size > 0 && cfg.data.nsp()) j["nsp_loss"] = r.nsp_loss / std::max(1.0, r.loss_steps);
      if (dist) {  // what the gradient all-reduce cost per step, and how much of it the backward hid
        const double n = static_cast<double>(window.steps);
        j["allreduce_mb_per_step"] = static_cast<double>(window.sync.bytes) / n / 1e6;
        j["allreduce_exposed_ms_per_step"] = window.sync.exposed_ms / n;
        j["allreduce_hidden_share"] =
            static_cast<double>(window.sync.bytes_done_in_backward) / std::max(1.0, static_cast<double>(window.sync.bytes));
        j["allreduce_buckets_started_in_backward"] =
            static_cast<double>(window.sync.started_in_backward) / std::max(1.0, static_cast<double>(window.sync.buckets));
      }
      if (metrics) metrics->write(j);
      if (!progress.active()) {
        util::log_info("step " + std::to_string(step) + "/" + std::to_string(t.max_steps) + " loss " +
                       fmt("%.4f", mean_loss) + " acc " + fmt("%.3f", acc) + " lr " + fmt("%.2e", lr) + " " +
                       fmt("%.0f tok/s", tok_s) + " ETA " + util::format_duration(eta) + budget_text);
      }
      summary.last_loss = mean_loss;
      tally.reset_window();
      window = Window();
    }
  };
  // One optimizer step (device work only): the loader's next micro-batches, the dropout stream of
  // this step, forward, backward, clip, AdamW. Also what the budget's probe times.
  std::vector<data::Batch> micro_batches(static_cast<size_t>(t.grad_accum_steps));
  struct StepCounts {
    int64_t tokens = 0, predictions = 0, sequences = 0;
  };
  auto one_step = [&](int64_t at_step, double lr, StepCounts& counts) {
    counts = StepCounts();
    for (auto& batch : micro_batches) {  // host work: the loader's next batches, copied (non-blocking)
      data::HostBatch host = loader.next();
      batch = data::to_device(host, device);
      counts.tokens += host.num_real_tokens;
      counts.predictions += host.num_predictions;
      counts.sequences += host.batch_size;
    }
    if (dist) {  // global counts
      torch::Tensor c = torch::tensor({counts.tokens, counts.predictions, counts.sequences}, torch::kInt64);
      dist->sum_(c);
      counts = {c[0].item<int64_t>(), c[1].item<int64_t>(), c[2].item<int64_t>()};
    }
    // The dropout stream: reseeded per step (and per rank, so replicas draw different masks).
    torch::manual_seed(dist ? util::derive_seed(t.seed, "dropout", static_cast<uint64_t>(at_step), static_cast<uint64_t>(dist->rank()))
                            : util::derive_seed(t.seed, "dropout", static_cast<uint64_t>(at_step)));
    SyncDebugScope no_sync(device, cfg.runtime.cuda_sync_debug);  // "error": a sync in the step throws
    return train_step(model, optimizer, scaler, micro_batches, lr, step_options, counts.predictions);
  };

  // ---- the budget: a probe fixes the step count once; the schedule then ends when the budget does ----
  if (t.time_budget_s > 0) {
    const std::string budget_text = util::format_duration(t.time_budget_s);
    if (resume_from) {
      if (!resumed_state.contains("budget") || !resumed_state["budget"].is_object()) {
        throw util::usage_error(source + ": training.time_budget is set but " + resume_from->string() +
                                " was written by a run without one; resume it without time_budget (and with its "
                                "max_steps), or start a new run");
      }
      const nlohmann::json& b = resumed_state["budget"];
      cfg.training.max_steps = b.value("max_steps", int64_t{0});
      budget.emplace(t.time_budget_s, b.value("used_s", 0.0), invocation_start);
      if (cfg.training.max_steps < 1) {
        throw util::input_error((*resume_from / "trainer_state.json").string() + ": budget.max_steps is missing or not positive");
      }
      util::log_info("time budget " + budget_text + ": " + util::format_duration(budget->used_s()) +
                     " used before this start; the schedule keeps the " + std::to_string(t.max_steps) +
                     " steps its probe fixed");
    } else {
      budget.emplace(t.time_budget_s, 0.0, invocation_start);
      ProbeTimes probe;
      {
        // Snapshot everything a step changes, run a few real steps, then put it all back: the run
        // after the probe is the run a fixed max_steps would give (bit for bit).
        std::vector<torch::Tensor> saved;
        for (const auto& p : model->parameters()) saved.push_back(p.detach().clone());
        auto opt_state = optimizer.state();  // (on the CPU its tensors alias the live state: copy them)
        for (auto& [name, tensor] : opt_state) tensor = tensor.clone();
        const nlohmann::json cursor = loader.cursor(), scaler_state = scaler.state();
        auto sync = [&] { if (device.is_cuda()) torch::cuda::synchronize(device.index()); };
        StepCounts unused;
        constexpr int kWarm = 2, kMaxTimed = 10;
        const double probe_cap_s = 0.03 * t.time_budget_s;
        for (int i = 0; i < kWarm; ++i) one_step(i, t.lr * 1e-3, unused);
        sync();
        auto t0 = Clock::now();
        int timed = 0;
        while (timed < kMaxTimed && (timed == 0 || std::chrono::duration<double>(Clock::now() - t0).count() < probe_cap_s)) {
          one_step(kWarm + timed, t.lr * 1e-3, unused);
          ++timed;
          sync();
        }
        probe.step_s = std::chrono::duration<double>(Clock::now() - t0).count() / timed;
        if (valid_data) {
          t0 = Clock::now();
          score_valid(run::standard_eval_masking());
          if (own_masking_differs) score_valid(cfg.masking);
          probe.eval_s = std::chrono::duration<double>(Clock::now() - t0).count();
        }
        {
          torch::NoGradGuard no_grad;
          auto params = model->parameters();
          for (size_t i = 0; i < saved.size(); ++i) params[i].copy_(saved[i]);
        }
        optimizer.zero_grad();
        optimizer.load_state(opt_state, "the budget probe's snapshot");
        loader.restore(cursor);
        scaler.restore(scaler_state, "the budget probe's snapshot");
        if (writer) {  // a save, timed into a scratch dir
          const fs::path scratch = run_dir / ".budget-probe";
          std::error_code ec;
          fs::remove_all(scratch, ec);
          t0 = Clock::now();
          save_checkpoint(scratch, model, *vocab, contents_at(0));
          probe.save_s = std::chrono::duration<double>(Clock::now() - t0).count();
          fs::remove_all(scratch, ec);
        }
      }
      int64_t fit = steps_that_fit(budget->left_s(), probe, cfg.runtime.eval_every, cfg.checkpoint.every, 0.05,
                                   t.max_steps);
      if (dist) fit = -dist->max(-fit);  // every rank takes the smallest estimate
      cfg.training.max_steps = fit;
      util::log_info("time budget " + budget_text + ": the probe measured " + fmt("%.3f s", probe.step_s) + " a step, " +
                     fmt("%.2f s", probe.eval_s) + " a validation, " + fmt("%.2f s", probe.save_s) + " a save; " +
                     std::to_string(fit) + " steps fit in the " + util::format_duration(budget->left_s()) +
                     " left, and the schedule ends at step " + std::to_string(fit));
    }
  }
  run_start = Clock::now();
  // Written only once everything above succeeded, so a failed start never rewrites a run's config.
  if (writer) util::write_file_atomic(run_dir / "run_config.json", to_json(cfg).dump(2) + "\n");

  // ---- the loop ----
  // The host reads the device (one copy of the tally) when it logs or saves; on the CPU, where a
  // read costs nothing, after every step (progress line, and the NaN guard stops at exactly
  // max_bad_steps). On CUDA the guard acts at the next read.
  bool target_reached = false, budget_spent = false;
  while (step < t.max_steps && (dist ? agreed_stop : util::stop_signal()) == 0 && !slice_done() && !budget_spent) {
    const double lr = run::lr_at(step, t);
    StepCounts counts;
    {
      StepResult result = one_step(step, lr, counts);
      window.sync += result.sync;
      tally.add(result);
    }
    window.tokens += counts.tokens;
    window.predictions += counts.predictions;
    window.sequences += counts.sequences;
    tokens_seen += counts.tokens;
    ++step;
    window.steps += 1;
    // The stop signal and the end of the budget, agreed by all ranks (max of signal * 2 + spent).
    const int64_t local = int64_t{util::stop_signal()} * 2 + (budget && budget->spent() ? 1 : 0);
    const int64_t agreed = dist ? dist->max(local) : local;
    agreed_stop = static_cast<int>(agreed / 2);
    budget_spent = agreed % 2 == 1;

    const bool log_now = step % cfg.runtime.log_every == 0 || step == t.max_steps;
    const bool save_now = step % cfg.checkpoint.every == 0 || step == t.max_steps;
    if (log_now || save_now || device.is_cpu()) report(log_now, lr);
    if (cfg.runtime.eval_every > 0 && step % cfg.runtime.eval_every == 0) {
      const double accuracy = validate_now(step);
      if (t.target_accuracy > 0 && accuracy >= t.target_accuracy) {
        target_reached = true;
        const double used = std::chrono::duration<double>(Clock::now() - invocation_start).count();
        if (writer) {
          progress.clear();
          util::log_info("reached validation accuracy " + fmt("%.4f", accuracy) + " >= target " +
                         fmt("%.4f", t.target_accuracy) + " at step " + std::to_string(step) + " after " +
                         util::format_duration(used) + " (" + std::to_string(tokens_seen) + " tokens)");
          if (metrics) {
            metrics->write({{"type", "target"}, {"step", step}, {"accuracy", accuracy},
                            {"target_accuracy", t.target_accuracy}, {"elapsed_s", used}, {"tokens_seen", tokens_seen}});
          }
        }
      }
    }
    if (save_now || target_reached) {
      save(step);
      last_saved = step;
    }
    if (target_reached) break;
  }
  if (step > first_step) read_tally();  // skipped_steps and the guard for a save at a stop signal

  // ---- the end: a stop signal saves first; a finished or budget-ended run validates once more ----
  summary.stop_signal = dist ? agreed_stop : util::stop_signal();
  summary.target_reached = target_reached;
  const bool validated_last = cfg.runtime.eval_every > 0 && step % cfg.runtime.eval_every == 0;
  if (summary.stop_signal != 0) {
    progress.clear();
    util::log_warn("stop requested (signal " + std::to_string(summary.stop_signal) + ") at step " + std::to_string(step));
    if (last_saved != step && step > first_step) save(step);
  } else if (budget_spent && step < t.max_steps) {
    progress.clear();
    util::log_warn("the time budget of " + util::format_duration(t.time_budget_s) + " ran out at step " + std::to_string(step) +
                   " of the " + std::to_string(t.max_steps) + " its probe planned (this machine ran slower than measured); "
                   "the schedule did not reach its end");
    if (!validated_last && step > first_step) validate_now(step);
    if (last_saved != step) save(step);
  } else if (step < t.max_steps && !target_reached) {
    if (last_saved != step) save(step);  // a slice (stop_after_steps) ends with a checkpoint to resume from
  } else if (!validated_last) {
    if (step > first_step) validate_now(step);
  }
  if (budget && writer) {
    util::log_info("time budget " + util::format_duration(t.time_budget_s) + ": used " +
                   util::format_duration(budget->used_s()) + ", " + util::format_duration(std::max(0.0, budget->left_s())) + " left");
  }
  progress.clear();
  summary.step = step;
  summary.last_checkpoint = last_checkpoint;
  return summary;
}

}  // namespace bert::train
