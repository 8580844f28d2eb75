// The training loop. Reads top to bottom like the pseudo-code of a paper: set up, resume, then
// for each step: masked batches -> forward -> loss -> backward -> clip -> AdamW; log, validate, save.
#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/batch.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "model/bert_model.h"
#include "model/weights.h"
#include "train/budget.h"
#include "train/checkpoint.h"
#include "train/cuda_memory.h"
#include "run/device.h"
#include "train/distributed.h"
#include "train/metrics_log.h"
#include "train/model_config.h"
#include "train/run_dir.h"
#include "train/step_tally.h"
#include "util/dir_lock.h"
#include "run/loss_scaler.h"
#include "run/optimizer.h"
#include "run/schedule.h"
#include "train/sync_debug.h"
#include "train/train_step.h"
#include "run/mlm_metrics.h"
#include "util/atomic_file.h"
#include "util/error.h"
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

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The host's counts of one optimizer step, summed over its micro-batches (and the ranks).
struct StepCounts {
  int64_t tokens = 0, predictions = 0, sequences = 0;
};

// One training run. Its phases are the public methods, called once each in this order: the
// constructor sets up, then resume(), prepare_loop(), plan_budget(), loop(), finish(). What the
// phases share (the config, device, model, optimizer, data, counters) are the members, declared in
// the order the phases make them (so they are destroyed in the reverse order).
class Trainer {
 public:
  // Sets up: config, device, run dir, vocabulary, model, optimizer, data.
  Trainer(const run::RunConfig& config, const std::string& source, Clock::time_point invocation_start);
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // The checkpoint to resume from (if any), then rank 0's weights on every replica.
  void resume();
  // The metrics log, the gradient all-reduce and the counters of this invocation.
  void prepare_loop();
  // training.time_budget: the step count that fits, fixed once.
  void plan_budget();
  // Steps, logging, validating and saving, until the end of the schedule, a stop signal, the end of
  // the budget or of a slice (stop_after_steps), or the target accuracy.
  void loop();
  // The last save and validation the loop left out; the run's summary.
  TrainSummary finish();

 private:
  // What a step changes, copied (the budget's probe puts it back).
  struct Snapshot {
    std::vector<torch::Tensor> params;
    std::map<std::string, torch::Tensor> optimizer;
    nlohmann::json loader, scaler;
  };

  void start_process();
  void open_run_dir();
  void build_model();
  void load_data();
  void log_set_up() const;
  void restore_checkpoint(const fs::path& dir);
  void keep_resumed_budget();
  void probe_budget();
  ProbeTimes probe_times();
  double time_steps();
  double time_save();
  Snapshot take_snapshot() const;
  void restore_snapshot(const Snapshot& s);
  StepResult one_step(int64_t at_step, double lr, StepCounts& counts);
  void agree_on_stop();
  int stop_signal() const { return dist_ ? agreed_stop_ : util::stop_signal(); }
  bool slice_done() const;
  CheckpointContents contents_at(int64_t at_step) const;
  void save(int64_t at_step);
  run::MlmMetrics score_valid(const data::MaskingOptions& masking);
  double validate_now(int64_t at_step);
  void check_target(double accuracy);
  DeviceTally::Read read_tally();
  void report(bool log_now, double lr);

  // set-up
  const Clock::time_point invocation_start_;  // a time budget counts the set-up too
  const std::string source_;                  // the config file, in messages
  run::RunConfig cfg_;
  const run::TrainingOptions& training_ = cfg_.training;  // (the budget fixes its max_steps)
  DistEnv dist_env_;
  bool writer_ = true;  // rank 0: the process that writes the run dir
  torch::Device device_{torch::kCPU};
  std::unique_ptr<Distributed> dist_;
  fs::path run_dir_;
  std::optional<util::DirLock> run_lock_;
  bool fresh_run_dir_ = false;  // this start creates the run dir
  std::optional<fs::path> resume_from_;
  std::shared_ptr<const wordpiece::Vocab> vocab_;
  model::BertConfig model_config_;
  model::BertForPreTraining model_{nullptr};
  std::optional<run::AdamW> optimizer_;
  std::optional<run::LossScaler> scaler_;
  std::shared_ptr<const data::Dataset> train_data_, valid_data_;
  std::optional<data::Loader> loader_;
  // resume
  int64_t step_ = 0, tokens_seen_ = 0, skipped_steps_ = 0;
  fs::path last_checkpoint_;
  nlohmann::json resumed_state_;
  // the loop
  std::optional<MetricsLog> metrics_;
  util::ProgressLine progress_;
  std::optional<WallBudget> budget_;  // set by plan_budget() when training.time_budget is
  bool own_masking_differs_ = false;  // validation scores the training masking too
  Clock::time_point run_start_;       // (after the budget's probe: the loop's own time, for ETA)
  int64_t first_step_ = 0;
  int64_t skipped_before_ = 0;  // from the checkpoint; the tally counts this invocation
  std::unique_ptr<GradientSync> grad_sync_;
  StepOptions step_options_;
  int agreed_stop_ = 0;  // the stop signal, agreed by all ranks after each step
  std::optional<DeviceTally> tally_;
  Window window_;
  double reported_nonfinite_ = 0;
  TrainSummary summary_;
  int64_t last_saved_ = -1;
  std::vector<data::Batch> micro_batches_;
  bool target_reached_ = false, budget_spent_ = false;
};

// ---- set up: config, device, run dir, vocabulary, model, optimizer, data ----
Trainer::Trainer(const run::RunConfig& config, const std::string& source, Clock::time_point invocation_start)
    : invocation_start_(invocation_start), source_(source), cfg_(config) {
  validate(cfg_, source_);
  util::install_stop_handlers();
  start_process();
  open_run_dir();
  build_model();
  load_data();
  log_set_up();
}

// Data-parallel when launched by torchrun/srun: rank 0 writes, every rank trains on its slice.
void Trainer::start_process() {
  dist_env_ = read_dist_env();
  writer_ = dist_env_.rank == 0;
  if (!writer_) util::set_log_prefix("rank " + std::to_string(dist_env_.rank), util::LogLevel::kWarn);
  if (cfg_.runtime.threads > 0) {
    torch::set_num_threads(cfg_.runtime.threads);
  } else if (dist_env_.local_world_size > 1) {  // the cores shared by the processes of this node
    torch::set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / dist_env_.local_world_size));
  }
  std::string device_name = cfg_.runtime.device;
  if (dist_env_.distributed() && (device_name == "cuda" || (device_name == "auto" && torch::cuda::is_available()))) {
    device_name = "cuda:" + std::to_string(dist_env_.local_rank);  // one GPU per process
  }
  device_ = run::resolve_device(device_name);
  if (device_.is_cuda()) run::configure_cuda_math(cfg_.runtime.tf32, cfg_.runtime.attention_backend);
  cfg_.training.precision = run::resolve_precision(cfg_.training.precision, device_, source_ + ": training.precision");
  if (dist_env_.distributed()) {
    dist_ = Distributed::connect(dist_env_, cfg_.runtime.backend, std::chrono::seconds(cfg_.runtime.dist_timeout_s), device_);
  }
}

void Trainer::open_run_dir() {
  run_dir_ = cfg_.checkpoint.dir;
  // One writer per run dir: a second bert-train on it (same config started twice) stops here, before
  // it logs into the first one's train.log or cleans up the first one's save in progress.
  std::error_code exists_ec;
  fresh_run_dir_ = !fs::exists(run_dir_, exists_ec);  // this start creates it
  if (writer_) {
    prepare_run_dir(run_dir_);
    run_lock_.emplace(util::DirLock::acquire(run_dir_, "bert-train"));
    util::add_log_file(run_dir_ / "train.log");
    run::clean_stale_temporaries(run_dir_);
  }
  if (dist_) dist_->barrier();  // the run dir exists and is clean before any rank reads it
  // A worker group torchrun restarted (--max-restarts) continues from the newest checkpoint,
  // whatever checkpoint.resume says: starting over would throw away what the group trained.
  std::string resume = cfg_.checkpoint.resume;
  if (dist_env_.restart_count > 0 && resume != "auto") {
    util::log_warn("torchrun restart " + std::to_string(dist_env_.restart_count) + ": resuming from the newest checkpoint (checkpoint.resume = \"" + resume + "\" applies to the first start only)");
    resume = "auto";
  }
  resume_from_ = resolve_resume(resume, run_dir_, source_);
}

void Trainer::build_model() {
  try {
    vocab_ = std::make_shared<const wordpiece::Vocab>(wordpiece::Vocab::load(cfg_.data.vocab_dir));
  } catch (const util::Error& e) {
    throw util::Error(e.kind(), source_ + ": data.vocab_dir = " + cfg_.data.vocab_dir.string() +
                                    " is not a usable vocabulary (expected the directory written by "
                                    "`bert-vocab build`): " + e.what());
  }
  vocab_->require_sequence_tokens("bert-train");
  model_config_ = resolve_model_config(cfg_, *vocab_, source_);

  // The initial weights are drawn from their own generator, seeded from training.seed.
  torch::manual_seed(util::derive_seed(training_.seed, "init"));
  model_ = model::BertForPreTraining(model_config_, util::derive_seed(training_.seed, "init"));
  if (!training_.init_from.empty()) {
    const fs::path weights = fs::path(training_.init_from) / "model.safetensors";
    if (!model::has_nsp_head(weights)) {
      util::log_warn(weights.string() + " has no pooler/NSP head (a BertForMaskedLM model): it starts from random init");
    }
    model::load_weights(model_, weights, {/*allow_missing_nsp_head=*/true});
  }
  model_->to(device_);
  model_->train();
  optimizer_.emplace(*model_, training_);
  scaler_.emplace(training_.precision == "fp16", device_);
}

void Trainer::load_data() {
  // The token cache: rank 0 builds it, the others then map what it wrote (no race on the rename).
  for (int turn = 0; turn < (dist_ ? 2 : 1); ++turn) {
    if ((turn == 0) == writer_) {
      train_data_ = data::prepare_dataset(cfg_.data.train_files, vocab_, cfg_.data, training_.seed);
      if (!cfg_.data.valid_files.empty()) valid_data_ = data::prepare_dataset(cfg_.data.valid_files, vocab_, cfg_.data, training_.seed);
    }
    if (dist_) dist_->barrier();
  }
  data::LoaderOptions loader_options;
  loader_options.batch_size = training_.batch_size;
  loader_options.seed = training_.seed;
  loader_options.rank = dist_env_.rank;
  loader_options.world_size = dist_env_.world_size;
  // A config found unusable only once the data is read (an epoch smaller than the global batch) is
  // a usage error like any other: a run dir this start created is removed again (its token cache
  // holds less than one batch), so the failed start leaves nothing behind.
  try {
    loader_.emplace(train_data_, loader_options, cfg_.masking);
  } catch (const util::Error& e) {
    if (writer_ && fresh_run_dir_ && e.kind() == util::ErrorKind::kUsage) {
      run_lock_.reset();
      std::error_code ec;
      fs::remove_all(run_dir_, ec);
    }
    throw;
  }
}

void Trainer::log_set_up() const {
  int64_t num_params = 0;
  for (const auto& p : model_->parameters()) num_params += p.numel();
  util::log_info("model: " + std::to_string(model_config_.num_layers) + " layers, hidden " +
                 std::to_string(model_config_.hidden_size) + ", " + std::to_string(model_config_.num_heads) +
                 " heads, vocab " + std::to_string(model_config_.vocab_size) + " = " +
                 fmt("%.2fM", num_params / 1e6) + " parameters on " + run::describe_device(device_) + ", " + training_.precision);
  util::log_info(run::describe_attention(device_, training_.precision, training_.batch_size, cfg_.data.max_seq_len, model_config_.num_heads,
                                    model_config_.hidden_size / model_config_.num_heads, model_config_.attention_dropout) +
                 (device_.is_cuda() ? "; runtime.attention_backend = " + cfg_.runtime.attention_backend +
                                         (cfg_.runtime.tf32 ? ", TF32 on" : ", TF32 off")
                                   : std::string()));
  const data::DatasetStats& ds = train_data_->stats();
  util::log_info("data: " + std::to_string(ds.documents) + " documents, " + std::to_string(ds.tokens) + " tokens -> " +
                 std::to_string(ds.sequences) + " sequences of " + std::to_string(cfg_.data.max_seq_len) +
                 " (packing " + fmt("%.1f%%", 100 * ds.packing_efficiency) + "); " + std::to_string(loader_->batches_per_epoch()) +
                 " batches of " + std::to_string(training_.batch_size) + " per epoch");
}

// ---- resume: model, optimizer, loader cursor and counters from the newest valid checkpoint ----
void Trainer::resume() {
  if (resume_from_) restore_checkpoint(*resume_from_);
  if (dist_) {  // every replica starts from rank 0's weights
    dist_->broadcast_from_rank0(model_->parameters());
    util::log_info("data-parallel: " + std::to_string(dist_->world_size()) + " processes (" + dist_env_.source + ", " +
                   dist_->backend() + "), global batch " + std::to_string(training_.batch_size * dist_->world_size() * training_.grad_accum_steps) +
                   " = " + std::to_string(training_.batch_size) + " x " + std::to_string(dist_->world_size()) + " ranks x " +
                   std::to_string(training_.grad_accum_steps) + " accumulation");
  }
}

void Trainer::restore_checkpoint(const fs::path& dir) {
  CheckpointContents c = load_checkpoint(dir, model_);
  optimizer_->load_state(c.optimizer_state, (dir / "optimizer.safetensors").string());
  if (!c.trainer_state.contains("loader") || !c.trainer_state["loader"].is_object()) {
    throw util::input_error((dir / "trainer_state.json").string() +
                            ": \"loader\" (the data cursor) is missing or not an object; resume from another "
                            "checkpoint or start afresh with --resume never");
  }
  try {
    loader_->restore(c.trainer_state["loader"]);
  } catch (const util::Error& e) {
    throw util::Error(e.kind(), (dir / "trainer_state.json").string() + ": cannot resume: " + e.what() +
                                    ". Resume with the data.train_files, vocabulary and sequence options this run "
                                    "was started with, or start a new run (--resume never, or another checkpoint.dir)");
  }
  step_ = c.step;
  resumed_state_ = c.trainer_state;
  tokens_seen_ = c.trainer_state.value("tokens_seen", int64_t{0});
  skipped_steps_ = c.trainer_state.value("skipped_steps", int64_t{0});
  if (c.trainer_state.contains("loss_scaler")) {
    scaler_->restore(c.trainer_state["loss_scaler"], (dir / "trainer_state.json").string());
  }
  last_checkpoint_ = dir;
  if (writer_) {
    run::set_aside_newer_checkpoints(run_dir_, step_);
    drop_metrics_after(run_dir_ / "metrics.jsonl", step_);
    drop_tensorboard_after(run_dir_ / "tensorboard", step_);
  }
  util::log_info("resumed from " + dir.string() + " at step " + std::to_string(step_));
  if (training_.time_budget_s == 0 && step_ >= training_.max_steps) {
    util::log_warn("the checkpoint is already at step " + std::to_string(step_) + " >= training.max_steps = " +
                   std::to_string(training_.max_steps) + "; raise max_steps to train further");
  }
}

void Trainer::prepare_loop() {
  if (writer_) {
    metrics_.emplace(run_dir_ / "metrics.jsonl", cfg_.runtime.tensorboard ? run_dir_ / "tensorboard" : fs::path(),
                     step_ + 1);
  }
  // Validation is scored with the standard masking (15 %, 80/10/10) whatever the training masking,
  // so runs with different masking compare; a different training masking is scored too.
  own_masking_differs_ = !run::same_masking(cfg_.masking, run::standard_eval_masking());
  first_step_ = step_;
  skipped_before_ = skipped_steps_;
  if (dist_) {
    // The tied word embeddings: the decoder reads an alias leaf, whose (dense, early) gradient is
    // all-reduced during the backward; the lookup's rows are exchanged sparsely after it.
    TiedWeight tied;
    tied.weight = model_->word_embeddings();
    tied.alias = tied.weight.detach().requires_grad_(true);
    model_->set_decoder_alias(tied.alias);
    grad_sync_ = std::make_unique<GradientSync>(*dist_, model_->parameters(), 25 << 20, cfg_.runtime.grad_sync_overlap,
                                                tied);
  }
  step_options_ = StepOptions{training_.precision, training_.clip_grad_norm, dist_.get(), grad_sync_.get()};
  tally_.emplace(device_);
  window_ = Window();
  last_saved_ = resume_from_ ? step_ : -1;
  micro_batches_.resize(static_cast<size_t>(training_.grad_accum_steps));
}

// ---- the budget: a probe fixes the step count once; the schedule then ends when the budget does ----
void Trainer::plan_budget() {
  if (training_.time_budget_s > 0) {
    if (resume_from_) {
      keep_resumed_budget();
    } else {
      probe_budget();
    }
  }
}

// A resumed run keeps the step count its first start's probe fixed, and the time it used.
void Trainer::keep_resumed_budget() {
  if (!resumed_state_.contains("budget") || !resumed_state_["budget"].is_object()) {
    throw util::usage_error(source_ + ": training.time_budget is set but " + resume_from_->string() +
                            " was written by a run without one; resume it without time_budget (and with its "
                            "max_steps), or start a new run");
  }
  const nlohmann::json& b = resumed_state_["budget"];
  cfg_.training.max_steps = b.value("max_steps", int64_t{0});
  budget_.emplace(training_.time_budget_s, b.value("used_s", 0.0), invocation_start_);
  if (cfg_.training.max_steps < 1) {
    throw util::input_error((*resume_from_ / "trainer_state.json").string() + ": budget.max_steps is missing or not positive");
  }
  util::log_info("time budget " + util::format_duration(training_.time_budget_s) + ": " + util::format_duration(budget_->used_s()) +
                 " used before this start; the schedule keeps the " + std::to_string(training_.max_steps) +
                 " steps its probe fixed");
}

void Trainer::probe_budget() {
  budget_.emplace(training_.time_budget_s, 0.0, invocation_start_);
  const ProbeTimes probe = probe_times();
  int64_t fit = steps_that_fit(budget_->left_s(), probe, cfg_.runtime.eval_every, cfg_.checkpoint.every, 0.05,
                               training_.max_steps);
  if (dist_) fit = -dist_->max(-fit);  // every rank takes the smallest estimate
  cfg_.training.max_steps = fit;
  util::log_info("time budget " + util::format_duration(training_.time_budget_s) + ": the probe measured " + fmt("%.3f s", probe.step_s) + " a step, " +
                 fmt("%.2f s", probe.eval_s) + " a validation, " + fmt("%.2f s", probe.save_s) + " a save; " +
                 std::to_string(fit) + " steps fit in the " + util::format_duration(budget_->left_s()) +
                 " left, and the schedule ends at step " + std::to_string(fit));
}

// Snapshot everything a step changes, run a few real steps, then put it all back: the run
// after the probe is the run a fixed max_steps would give (bit for bit).
ProbeTimes Trainer::probe_times() {
  ProbeTimes probe;
  const Snapshot before = take_snapshot();
  probe.step_s = time_steps();
  if (valid_data_) {
    const auto t0 = Clock::now();
    score_valid(run::standard_eval_masking());
    if (own_masking_differs_) score_valid(cfg_.masking);
    probe.eval_s = seconds_since(t0);
  }
  restore_snapshot(before);
  if (writer_) probe.save_s = time_save();
  return probe;
}

// Seconds a step takes: two warm-up steps, then up to ten timed ones, within 3 % of the budget.
double Trainer::time_steps() {
  auto sync = [&] { if (device_.is_cuda()) torch::cuda::synchronize(device_.index()); };
  StepCounts unused;
  constexpr int kWarm = 2, kMaxTimed = 10;
  const double probe_cap_s = 0.03 * training_.time_budget_s;
  for (int i = 0; i < kWarm; ++i) one_step(i, training_.lr * 1e-3, unused);
  sync();
  const auto t0 = Clock::now();
  int timed = 0;
  while (timed < kMaxTimed && (timed == 0 || seconds_since(t0) < probe_cap_s)) {
    one_step(kWarm + timed, training_.lr * 1e-3, unused);
    ++timed;
    sync();
  }
  return seconds_since(t0) / timed;
}

// Seconds a save takes, timed into a scratch dir.
double Trainer::time_save() {
  const fs::path scratch = run_dir_ / ".budget-probe";
  std::error_code ec;
  fs::remove_all(scratch, ec);
  const auto t0 = Clock::now();
  save_checkpoint(scratch, model_, *vocab_, contents_at(0));
  const double save_s = seconds_since(t0);
  fs::remove_all(scratch, ec);
  return save_s;
}

Trainer::Snapshot Trainer::take_snapshot() const {
  Snapshot s;
  for (const auto& p : model_->parameters()) s.params.push_back(p.detach().clone());
  s.optimizer = optimizer_->state();  // (on the CPU its tensors alias the live state: copy them)
  for (auto& [name, tensor] : s.optimizer) tensor = tensor.clone();
  s.loader = loader_->cursor();
  s.scaler = scaler_->state();
  return s;
}

void Trainer::restore_snapshot(const Snapshot& s) {
  {
    torch::NoGradGuard no_grad;
    auto params = model_->parameters();
    for (size_t i = 0; i < s.params.size(); ++i) params[i].copy_(s.params[i]);
  }
  optimizer_->zero_grad();
  optimizer_->load_state(s.optimizer, "the budget probe's snapshot");
  loader_->restore(s.loader);
  scaler_->restore(s.scaler, "the budget probe's snapshot");
}

// ---- the loop ----
// The host reads the device (one copy of the tally) when it logs or saves; on the CPU, where a
// read costs nothing, after every step (progress line, and the NaN guard stops at exactly
// max_bad_steps). On CUDA the guard acts at the next read.
void Trainer::loop() {
  run_start_ = Clock::now();
  // Written only once everything above succeeded, so a failed start never rewrites a run's config.
  if (writer_) util::write_file_atomic(run_dir_ / "run_config.json", to_json(cfg_).dump(2) + "\n");

  while (step_ < training_.max_steps && stop_signal() == 0 && !slice_done() && !budget_spent_) {
    const double lr = run::lr_at(step_, training_);
    StepCounts counts;
    {
      StepResult result = one_step(step_, lr, counts);
      window_.sync += result.sync;
      tally_->add(result);
    }
    window_.tokens += counts.tokens;
    window_.predictions += counts.predictions;
    window_.sequences += counts.sequences;
    tokens_seen_ += counts.tokens;
    ++step_;
    window_.steps += 1;
    agree_on_stop();

    const bool log_now = step_ % cfg_.runtime.log_every == 0 || step_ == training_.max_steps;
    const bool save_now = step_ % cfg_.checkpoint.every == 0 || step_ == training_.max_steps;
    if (log_now || save_now || device_.is_cpu()) report(log_now, lr);
    if (cfg_.runtime.eval_every > 0 && step_ % cfg_.runtime.eval_every == 0) check_target(validate_now(step_));
    if (save_now || target_reached_) {
      save(step_);
      last_saved_ = step_;
    }
    if (target_reached_) break;
  }
  if (step_ > first_step_) read_tally();  // skipped_steps and the guard for a save at a stop signal
}

// One optimizer step (device work only): the loader's next micro-batches, the dropout stream of
// this step, forward, backward, clip, AdamW. Also what the budget's probe times.
StepResult Trainer::one_step(int64_t at_step, double lr, StepCounts& counts) {
  counts = StepCounts();
  for (auto& batch : micro_batches_) {  // host work: the loader's next batches, copied (non-blocking)
    data::HostBatch host = loader_->next();
    batch = data::to_device(host, device_);
    counts.tokens += host.num_real_tokens;
    counts.predictions += host.num_predictions;
    counts.sequences += host.batch_size;
  }
  if (dist_) {  // global counts
    torch::Tensor c = torch::tensor({counts.tokens, counts.predictions, counts.sequences}, torch::kInt64);
    dist_->sum_(c);
    counts = {c[0].item<int64_t>(), c[1].item<int64_t>(), c[2].item<int64_t>()};
  }
  // The dropout stream: reseeded per step (and per rank, so replicas draw different masks).
  torch::manual_seed(dist_ ? util::derive_seed(training_.seed, "dropout", static_cast<uint64_t>(at_step), static_cast<uint64_t>(dist_->rank()))
                           : util::derive_seed(training_.seed, "dropout", static_cast<uint64_t>(at_step)));
  SyncDebugScope no_sync(device_, cfg_.runtime.cuda_sync_debug);  // "error": a sync in the step throws
  return train_step(model_, *optimizer_, *scaler_, micro_batches_, lr, step_options_, counts.predictions);
}

// The stop signal and the end of the budget, agreed by all ranks (max of signal * 2 + spent).
void Trainer::agree_on_stop() {
  const int64_t local = int64_t{util::stop_signal()} * 2 + (budget_ && budget_->spent() ? 1 : 0);
  const int64_t agreed = dist_ ? dist_->max(local) : local;
  agreed_stop_ = static_cast<int>(agreed / 2);
  budget_spent_ = agreed % 2 == 1;
}

bool Trainer::slice_done() const {
  return cfg_.runtime.stop_after_steps > 0 && step_ - first_step_ >= cfg_.runtime.stop_after_steps;
}

CheckpointContents Trainer::contents_at(int64_t at_step) const {
  CheckpointContents c;
  c.step = at_step;
  c.optimizer_state = optimizer_->state();
  c.trainer_state = {{"loader", loader_->cursor()}, {"tokens_seen", tokens_seen_},
                     {"skipped_steps", skipped_steps_}, {"loss_scaler", scaler_->state()},
                     {"run_config", to_json(cfg_)}};
  if (budget_) {
    c.trainer_state["budget"] = {{"budget_s", budget_->budget_s()}, {"used_s", budget_->used_s()},
                                 {"max_steps", training_.max_steps}};
  }
  return c;
}

void Trainer::save(int64_t at_step) {  // (the newest checkpoint is what `latest` names)
  if (!writer_) {  // no rank runs ahead of a checkpoint that may fail
    dist_->barrier();
    return;
  }
  last_checkpoint_ = save_checkpoint(run_dir_, model_, *vocab_, contents_at(at_step));
  run::prune_checkpoints(run_dir_, cfg_.checkpoint.keep_last);
  progress_.clear();
  util::log_info("saved checkpoint " + last_checkpoint_.string());
  if (dist_) dist_->barrier();
}

// One validation pass scored with `masking`. Sharded: rank r takes batches r, r + W, ... of the
// pass one process makes (the same masks, which depend on a batch's place in the pass), up to
// eval_max_batches of them in all; the sums are reduced, so every rank has one process's figures.
run::MlmMetrics Trainer::score_valid(const data::MaskingOptions& masking) {
  const int world = dist_ ? dist_->world_size() : 1;
  const int rank = dist_ ? dist_->rank() : 0;
  data::EvalLoader stream(valid_data_, training_.batch_size, masking, util::derive_seed(training_.seed, "valid"), rank, world);
  int64_t global_index = rank;
  const int64_t cap = cfg_.runtime.eval_max_batches;
  auto next = [&](data::HostBatch& b) {
    if (cap > 0 && global_index >= cap) return false;
    global_index += world;
    return stream.next(b);
  };
  run::SumOverRanks reduce = nullptr;
  if (dist_) reduce = [&](torch::Tensor& sums) { dist_->sum_(sums); };
  return run::evaluate_mlm(model_, next, device_, training_.precision, 0, reduce);
}

// Validation with the standard masking, and the training masking when it differs (see
// own_masking_differs_). Returns the standard accuracy (-1 without validation data), the same on
// every rank.
double Trainer::validate_now(int64_t at_step) {
  if (!valid_data_) return -1;
  run::MlmMetrics v = score_valid(run::standard_eval_masking());
  std::optional<run::MlmMetrics> own;
  if (own_masking_differs_) own = score_valid(cfg_.masking);
  if (!writer_) return v.accuracy;
  nlohmann::json j = v.to_json();
  j["type"] = "valid";
  j["step"] = at_step;
  j["masking"] = "standard";
  j["elapsed_s"] = seconds_since(invocation_start_);  // set-up included
  j["tokens_seen"] = tokens_seen_;
  if (own) j["training_masking"] = own->to_json();
  if (metrics_) metrics_->write(j);
  progress_.clear();
  util::log_info("valid step " + std::to_string(at_step) + ": loss " + fmt("%.4f", v.loss) + ", accuracy " +
                 fmt("%.4f", v.accuracy) + ", perplexity " + fmt("%.2f", v.perplexity) +
                 (v.nsp_accuracy >= 0 ? ", nsp accuracy " + fmt("%.4f", v.nsp_accuracy) : "") +
                 (own ? " (15 % masking; with the training masking: loss " + fmt("%.4f", own->loss) + ", accuracy " +
                            fmt("%.4f", own->accuracy) + ")"
                      : ""));
  return v.accuracy;
}

// training.target_accuracy: a validation that reaches it ends the run (after a save).
void Trainer::check_target(double accuracy) {
  if (!(training_.target_accuracy > 0 && accuracy >= training_.target_accuracy)) return;
  target_reached_ = true;
  const double used = seconds_since(invocation_start_);
  if (!writer_) return;
  progress_.clear();
  util::log_info("reached validation accuracy " + fmt("%.4f", accuracy) + " >= target " +
                 fmt("%.4f", training_.target_accuracy) + " at step " + std::to_string(step_) + " after " +
                 util::format_duration(used) + " (" + std::to_string(tokens_seen_) + " tokens)");
  if (metrics_) {
    metrics_->write({{"type", "target"}, {"step", step_}, {"accuracy", accuracy},
                     {"target_accuracy", training_.target_accuracy}, {"elapsed_s", used}, {"tokens_seen", tokens_seen_}});
  }
}

// Reads the tally: updates skipped_steps, warns about skipped updates, stops a diverged run.
DeviceTally::Read Trainer::read_tally() {
  const DeviceTally::Read r = tally_->read();
  skipped_steps_ = skipped_before_ + static_cast<int64_t>(r.skipped);
  if (r.nonfinite > reported_nonfinite_) {
    util::log_warn("step " + std::to_string(step_) + ": non-finite loss or gradient; update skipped (" +
                   fmt("%.0f", r.nonfinite - reported_nonfinite_) + " since the last report, " +
                   fmt("%.0f", r.streak) + " in a row now)");
    reported_nonfinite_ = r.nonfinite;
  }
  if (r.longest_streak >= training_.max_bad_steps) {
    throw util::runtime_error("training diverged: " + fmt("%.0f", r.longest_streak) +
                              " steps in a row had a non-finite loss or gradient (seen at step " +
                              std::to_string(step_) + "); lower training.lr, raise warmup_steps or use fp32. "
                              "The last good checkpoint is " + (last_checkpoint_.empty() ? std::string("none") : last_checkpoint_.string()));
  }
  return r;
}

// Progress line, and with `log_now` a metrics row and a log line, from one read of the tally.
void Trainer::report(bool log_now, double lr) {
  const DeviceTally::Read r = read_tally();
  const double window_s = seconds_since(window_.start);
  const double elapsed = seconds_since(run_start_);
  double eta = elapsed / static_cast<double>(step_ - first_step_) * static_cast<double>(training_.max_steps - step_);
  std::string budget_text;
  if (budget_) {
    eta = std::min(eta, std::max(0.0, budget_->left_s()));
    budget_text = "  budget " + util::format_duration(budget_->used_s()) + "/" + util::format_duration(budget_->budget_s());
  }
  const double mean_loss = r.loss / std::max(1.0, r.loss_steps);
  const double acc = window_.predictions ? r.correct / static_cast<double>(window_.predictions) : 0.0;
  const double tok_s = static_cast<double>(window_.tokens) / std::max(window_s, 1e-9);
  if (writer_) progress_.update("step " + std::to_string(step_) + "/" + std::to_string(training_.max_steps) + "  loss " +
                    fmt("%.4f", mean_loss) + "  acc " + fmt("%.3f", acc) + "  lr " + fmt("%.2e", lr) + "  |g| " +
                    fmt("%.2f", r.grad_norm / static_cast<double>(window_.steps)) + "  " + fmt("%.0f tok/s", tok_s) +
                    "  ETA " + util::format_duration(eta) + budget_text);
  if (!log_now) return;
  nlohmann::json j = {{"type", "train"}, {"step", step_}, {"loss", mean_loss},
                      {"mlm_loss", r.mlm_loss / std::max(1.0, r.loss_steps)}, {"mlm_accuracy", acc}, {"lr", lr},
                      {"grad_norm", r.grad_norm / static_cast<double>(window_.steps)},
                      {"tokens_per_s", tok_s},
                      {"sequences_per_s", static_cast<double>(window_.sequences) / std::max(window_s, 1e-9)},
                      {"tokens_seen", tokens_seen_}, {"skipped_steps", skipped_steps_}, {"elapsed_s", elapsed}};
  if (budget_) {
    j["budget_used_s"] = budget_->used_s();
    j["budget_left_s"] = std::max(0.0, budget_->left_s());
  }
  if (model_config_.type_vocab_size > 0 && cfg_.data.nsp()) j["nsp_loss"] = r.nsp_loss / std::max(1.0, r.loss_steps);
  if (const double peak = cuda_peak_allocated_gib(device_); peak >= 0) j["cuda_max_memory_allocated_gib"] = peak;
  if (dist_) {  // what the gradient all-reduce cost per step, and how much of it the backward hid
    const double n = static_cast<double>(window_.steps);
    j["allreduce_mb_per_step"] = static_cast<double>(window_.sync.bytes) / n / 1e6;
    j["allreduce_exposed_ms_per_step"] = window_.sync.exposed_ms / n;
    j["allreduce_hidden_share"] =
        static_cast<double>(window_.sync.bytes_done_in_backward) / std::max(1.0, static_cast<double>(window_.sync.bytes));
    j["allreduce_buckets_started_in_backward"] =
        static_cast<double>(window_.sync.started_in_backward) / std::max(1.0, static_cast<double>(window_.sync.buckets));
  }
  if (metrics_) metrics_->write(j);
  if (!progress_.active()) {
    util::log_info("step " + std::to_string(step_) + "/" + std::to_string(training_.max_steps) + " loss " +
                   fmt("%.4f", mean_loss) + " acc " + fmt("%.3f", acc) + " lr " + fmt("%.2e", lr) + " " +
                   fmt("%.0f tok/s", tok_s) + " ETA " + util::format_duration(eta) + budget_text);
  }
  summary_.last_loss = mean_loss;
  tally_->reset_window();
  window_ = Window();
}

// ---- the end: a stop signal saves first; a finished or budget-ended run validates once more ----
TrainSummary Trainer::finish() {
  summary_.stop_signal = stop_signal();
  summary_.target_reached = target_reached_;
  const bool validated_last = cfg_.runtime.eval_every > 0 && step_ % cfg_.runtime.eval_every == 0;
  if (summary_.stop_signal != 0) {
    progress_.clear();
    util::log_warn("stop requested (signal " + std::to_string(summary_.stop_signal) + ") at step " + std::to_string(step_));
    if (last_saved_ != step_ && step_ > first_step_) save(step_);
  } else if (budget_spent_ && step_ < training_.max_steps) {
    progress_.clear();
    util::log_warn("the time budget of " + util::format_duration(training_.time_budget_s) + " ran out at step " + std::to_string(step_) +
                   " of the " + std::to_string(training_.max_steps) + " its probe planned (this machine ran slower than measured); "
                   "the schedule did not reach its end");
    if (!validated_last && step_ > first_step_) validate_now(step_);
    if (last_saved_ != step_) save(step_);
  } else if (step_ < training_.max_steps && !target_reached_) {
    if (last_saved_ != step_) save(step_);  // a slice (stop_after_steps) ends with a checkpoint to resume from
  } else if (!validated_last) {
    if (step_ > first_step_) validate_now(step_);
  }
  if (budget_ && writer_) {
    util::log_info("time budget " + util::format_duration(training_.time_budget_s) + ": used " +
                   util::format_duration(budget_->used_s()) + ", " + util::format_duration(std::max(0.0, budget_->left_s())) + " left");
  }
  progress_.clear();
  summary_.step = step_;
  summary_.last_checkpoint = last_checkpoint_;
  return summary_;
}

}  // namespace

TrainSummary run_training(const run::RunConfig& config, const std::string& source) {
  const auto invocation_start = Clock::now();  // a time budget counts the set-up too
  Trainer trainer(config, source, invocation_start);  // config, device, run dir, vocabulary, model, optimizer, data
  trainer.resume();        // the newest valid checkpoint, then rank 0's weights on every replica
  trainer.prepare_loop();  // metrics log, gradient all-reduce, this invocation's counters
  trainer.plan_budget();   // training.time_budget: the probe fixes max_steps once
  trainer.loop();          // step, log, validate, save until max_steps, a stop signal, the budget or the target
  return trainer.finish();  // a last save and validation where the loop left them out
}

}  // namespace bert::train
