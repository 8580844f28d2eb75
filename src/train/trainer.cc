// The training loop. Reads top to bottom like the pseudo-code of a paper: set up, resume, then
// for each step: masked batches -> forward -> loss -> backward -> clip -> AdamW; log, validate, save.
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "data/batch.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "model/bert_model.h"
#include "model/weights.h"
#include "train/checkpoint.h"
#include "train/device.h"
#include "train/loss_scaler.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/validation.h"
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

// Sums over the steps since the last log line.
struct Window {
  double loss = 0, mlm_loss = 0, nsp_loss = 0, grad_norm = 0;
  int64_t steps = 0, loss_steps = 0, correct = 0, predictions = 0, tokens = 0, sequences = 0;
  Clock::time_point start = Clock::now();
};

model::BertConfig resolve_model_config(RunConfig& cfg, const wordpiece::Vocab& vocab, const std::string& source) {
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
  if (resume == "auto") return find_latest_checkpoint(run_dir);
  std::error_code ec;
  const fs::path p(resume);
  if (!fs::is_directory(p, ec)) {
    throw util::usage_error(source + ": checkpoint.resume = \"" + resume +
                            "\" is not auto, never, or an existing checkpoint or run directory");
  }
  if (!fs::exists(p / "manifest.json", ec)) {
    auto latest = find_latest_checkpoint(p);
    if (!latest) throw util::input_error("cannot resume from " + resume + ": it holds no valid checkpoint");
    return latest;
  }
  std::string why = verify_checkpoint(p);
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

TrainSummary run_training(const RunConfig& config_in, const std::string& source) {
  // ---- set up: config, device, run dir, vocabulary, model, optimizer, data ----
  RunConfig cfg = config_in;
  validate(cfg, source);
  util::install_stop_handlers();
  if (cfg.runtime.threads > 0) torch::set_num_threads(cfg.runtime.threads);
  const torch::Device device = resolve_device(cfg.runtime.device);
  if (cfg.training.precision == "fp16" && !device.is_cuda()) {
    throw util::usage_error(source + ": training.precision = \"fp16\" needs a CUDA device; use \"bf16\" on CPU");
  }
  const fs::path run_dir = cfg.checkpoint.dir;
  prepare_run_dir(run_dir);
  util::add_log_file(run_dir / "train.log");
  clean_stale_temporaries(run_dir);
  const std::optional<fs::path> resume_from = resolve_resume(cfg.checkpoint.resume, run_dir, source);

  std::shared_ptr<const wordpiece::Vocab> vocab;
  try {
    vocab = std::make_shared<const wordpiece::Vocab>(wordpiece::Vocab::load(cfg.data.vocab_dir));
  } catch (const util::Error& e) {
    throw util::Error(e.kind(), source + ": data.vocab_dir = " + cfg.data.vocab_dir.string() +
                                    " is not a usable vocabulary (expected the directory written by "
                                    "`bert-vocab build`): " + e.what());
  }
  const model::BertConfig model_config = resolve_model_config(cfg, *vocab, source);

  const TrainingOptions& t = cfg.training;
  torch::manual_seed(util::derive_seed(t.seed, "init"));
  model::BertForPreTraining model(model_config);
  if (!t.init_from.empty()) {
    const fs::path weights = fs::path(t.init_from) / "model.safetensors";
    if (!model::has_nsp_head(weights)) {
      util::log_warn(weights.string() + " has no pooler/NSP head (a BertForMaskedLM model): it starts from random init");
    }
    model::load_weights(model, weights, {/*allow_missing_nsp_head=*/true});
  }
  model->to(device);
  model->train();
  AdamW optimizer(*model, t);
  LossScaler scaler(t.precision == "fp16", device);

  auto train_data = data::prepare_dataset(cfg.data.train_files, vocab, cfg.data, t.seed);
  std::shared_ptr<const data::Dataset> valid_data;
  if (!cfg.data.valid_files.empty()) valid_data = data::prepare_dataset(cfg.data.valid_files, vocab, cfg.data, t.seed);
  data::LoaderOptions loader_options;
  loader_options.batch_size = t.batch_size;
  loader_options.seed = t.seed;
  data::Loader loader(train_data, loader_options, cfg.masking);

  int64_t num_params = 0;
  for (const auto& p : model->parameters()) num_params += p.numel();
  util::log_info("model: " + std::to_string(model_config.num_layers) + " layers, hidden " +
                 std::to_string(model_config.hidden_size) + ", " + std::to_string(model_config.num_heads) +
                 " heads, vocab " + std::to_string(model_config.vocab_size) + " = " +
                 fmt("%.2fM", num_params / 1e6) + " parameters on " + describe_device(device) + ", " + t.precision);
  const data::DatasetStats& ds = train_data->stats();
  util::log_info("data: " + std::to_string(ds.documents) + " documents, " + std::to_string(ds.tokens) + " tokens -> " +
                 std::to_string(ds.sequences) + " sequences of " + std::to_string(cfg.data.max_seq_len) +
                 " (packing " + fmt("%.1f%%", 100 * ds.packing_efficiency) + "); " + std::to_string(loader.batches_per_epoch()) +
                 " batches of " + std::to_string(t.batch_size) + " per epoch");

  // ---- resume: model, optimizer, loader cursor and counters from the newest valid checkpoint ----
  int64_t step = 0, tokens_seen = 0, skipped_steps = 0;
  fs::path last_checkpoint;
  if (resume_from) {
    CheckpointContents c = load_checkpoint(*resume_from, model);
    optimizer.load_state(c.optimizer_state, (*resume_from / "optimizer.safetensors").string());
    loader.restore(c.trainer_state.at("loader"));
    step = c.step;
    tokens_seen = c.trainer_state.value("tokens_seen", int64_t{0});
    skipped_steps = c.trainer_state.value("skipped_steps", int64_t{0});
    if (c.trainer_state.contains("loss_scaler")) {
      scaler.restore(c.trainer_state["loss_scaler"], (*resume_from / "trainer_state.json").string());
    }
    last_checkpoint = *resume_from;
    set_aside_newer_checkpoints(run_dir, step);
    drop_metrics_after(run_dir / "metrics.jsonl", step);
    util::log_info("resumed from " + resume_from->string() + " at step " + std::to_string(step));
    if (step >= t.max_steps) {
      util::log_warn("the checkpoint is already at step " + std::to_string(step) + " >= training.max_steps = " +
                     std::to_string(t.max_steps) + "; raise max_steps to train further");
    }
  }
  // Written only once everything above succeeded, so a failed start never rewrites a run's config.
  util::write_file_atomic(run_dir / "run_config.json", to_json(cfg).dump(2) + "\n");

  MetricsLog metrics(run_dir / "metrics.jsonl");
  util::ProgressLine progress;
  auto save = [&](int64_t at_step) {  // (the newest checkpoint is what `latest` names)
    CheckpointContents c;
    c.step = at_step;
    c.optimizer_state = optimizer.state();
    c.trainer_state = {{"loader", loader.cursor()}, {"tokens_seen", tokens_seen},
                       {"skipped_steps", skipped_steps}, {"loss_scaler", scaler.state()},
                       {"run_config", to_json(cfg)}};
    last_checkpoint = save_checkpoint(run_dir, model, *vocab, c);
    prune_checkpoints(run_dir, cfg.checkpoint.keep_last);
    progress.clear();
    util::log_info("saved checkpoint " + last_checkpoint.string());
  };
  auto validate_now = [&](int64_t at_step) {
    if (!valid_data) return;
    data::EvalLoader stream(valid_data, t.batch_size, cfg.masking, util::derive_seed(t.seed, "valid"));
    MlmMetrics v = evaluate_mlm(model, [&](data::HostBatch& b) { return stream.next(b); }, device,
                                t.precision, cfg.runtime.eval_max_batches);
    nlohmann::json j = v.to_json();
    j["type"] = "valid";
    j["step"] = at_step;
    metrics.write(j);
    progress.clear();
    util::log_info("valid step " + std::to_string(at_step) + ": loss " + fmt("%.4f", v.loss) + ", accuracy " +
                   fmt("%.4f", v.accuracy) + ", perplexity " + fmt("%.2f", v.perplexity) +
                   (v.nsp_accuracy >= 0 ? ", nsp accuracy " + fmt("%.4f", v.nsp_accuracy) : ""));
  };

  // ---- the loop ----
  const auto run_start = Clock::now();
  const int64_t first_step = step;
  Window window;
  int bad_in_a_row = 0;
  TrainSummary summary;
  int64_t last_saved = resume_from ? step : -1;
  auto slice_done = [&] {
    return cfg.runtime.stop_after_steps > 0 && step - first_step >= cfg.runtime.stop_after_steps;
  };
  while (step < t.max_steps && util::stop_signal() == 0 && !slice_done()) {
    const double lr = lr_at(step, t);
    torch::manual_seed(util::derive_seed(t.seed, "dropout", static_cast<uint64_t>(step)));  // dropout stream
    optimizer.zero_grad();

    double loss = 0, mlm_loss = 0, nsp_loss = 0;
    for (int micro = 0; micro < t.grad_accum_steps; ++micro) {
      data::HostBatch host = loader.next();
      data::Batch batch = data::to_device(host, device);  // [B, T] each
      model::PretrainingOutput out;
      {
        AutocastScope autocast(device, t.precision);
        out = model->forward(batch.input_ids, batch.token_type_ids, batch.attention_mask, batch.mlm_labels,
                             batch.nsp_labels);
      }
      scaler.apply(out.loss / t.grad_accum_steps).backward();
      loss += out.loss.item<double>() / t.grad_accum_steps;
      mlm_loss += out.mlm_loss.item<double>() / t.grad_accum_steps;
      if (out.nsp_loss.defined()) nsp_loss += out.nsp_loss.item<double>() / t.grad_accum_steps;
      window.correct += out.mlm_logits.argmax(-1).eq(out.mlm_targets).sum().item<int64_t>();
      window.predictions += out.mlm_targets.numel();
      window.tokens += host.num_real_tokens;
      window.sequences += host.batch_size;
      tokens_seen += host.num_real_tokens;
    }

    scaler.unscale(optimizer.parameters());
    const double grad_norm = global_grad_norm(optimizer.parameters());
    if (!std::isfinite(loss) || (!std::isfinite(grad_norm) && !scaler.enabled())) {
      ++skipped_steps;  // NaN/Inf guard: no update from this step
      if (++bad_in_a_row >= t.max_bad_steps) {
        throw util::runtime_error("training diverged: " + std::to_string(bad_in_a_row) +
                                  " steps in a row had a non-finite loss or gradient (last at step " +
                                  std::to_string(step) + "); lower training.lr, raise warmup_steps or use fp32. "
                                  "The last good checkpoint is " + (last_checkpoint.empty() ? std::string("none") : last_checkpoint.string()));
      }
      util::log_warn("step " + std::to_string(step) + ": non-finite loss or gradient; update skipped (" +
                     std::to_string(bad_in_a_row) + " in a row)");
    } else {
      std::optional<torch::Tensor> clip;  // clipping happens inside the fused update
      if (const auto d = clip_divisor(grad_norm, t.clip_grad_norm)) {
        clip = torch::full({}, *d, torch::TensorOptions().dtype(torch::kFloat32).device(device));
      }
      optimizer.step(lr, clip, scaler.enabled() ? std::optional<torch::Tensor>(scaler.found_inf()) : std::nullopt);
      if (scaler.overflowed()) ++skipped_steps;
      bad_in_a_row = 0;
    }
    scaler.update();
    ++step;

    if (std::isfinite(loss)) {  // a skipped NaN step must not poison the window's mean
      window.loss += loss;
      window.mlm_loss += mlm_loss;
      window.nsp_loss += nsp_loss;
      window.loss_steps += 1;
    }
    window.grad_norm += std::isfinite(grad_norm) ? grad_norm : 0.0;
    window.steps += 1;
    const double window_s = std::chrono::duration<double>(Clock::now() - window.start).count();
    const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
    const double eta = elapsed / static_cast<double>(step - first_step) * static_cast<double>(t.max_steps - step);
    const double acc = window.predictions ? static_cast<double>(window.correct) / window.predictions : 0.0;
    progress.update("step " + std::to_string(step) + "/" + std::to_string(t.max_steps) + "  loss " +
                    fmt("%.4f", window.loss / std::max<int64_t>(1, window.loss_steps)) + "  acc " + fmt("%.3f", acc) + "  lr " +
                    fmt("%.2e", lr) + "  |g| " + fmt("%.2f", window.grad_norm / window.steps) + "  " +
                    fmt("%.0f tok/s", window.tokens / std::max(window_s, 1e-9)) + "  ETA " + util::format_duration(eta));
    if (step % cfg.runtime.log_every == 0 || step == t.max_steps) {
      nlohmann::json j = {{"type", "train"}, {"step", step}, {"loss", window.loss / std::max<int64_t>(1, window.loss_steps)},
                          {"mlm_loss", window.mlm_loss / std::max<int64_t>(1, window.loss_steps)}, {"mlm_accuracy", acc}, {"lr", lr},
                          {"grad_norm", window.grad_norm / window.steps},
                          {"tokens_per_s", window.tokens / std::max(window_s, 1e-9)},
                          {"sequences_per_s", window.sequences / std::max(window_s, 1e-9)},
                          {"tokens_seen", tokens_seen}, {"skipped_steps", skipped_steps}, {"elapsed_s", elapsed}};
      if (model_config.type_vocab_size > 0 && cfg.data.nsp()) j["nsp_loss"] = window.nsp_loss / std::max<int64_t>(1, window.loss_steps);
      metrics.write(j);
      if (!progress.active()) {
        util::log_info("step " + std::to_string(step) + "/" + std::to_string(t.max_steps) + " loss " +
                       fmt("%.4f", window.loss / std::max<int64_t>(1, window.loss_steps)) + " acc " + fmt("%.3f", acc) + " lr " + fmt("%.2e", lr) +
                       " " + fmt("%.0f tok/s", window.tokens / std::max(window_s, 1e-9)) + " ETA " +
                       util::format_duration(eta));
      }
      summary.last_loss = window.loss / std::max<int64_t>(1, window.loss_steps);
      window = Window();
    }
    if (cfg.runtime.eval_every > 0 && step % cfg.runtime.eval_every == 0) validate_now(step);
    if (step % cfg.checkpoint.every == 0 || step == t.max_steps) {
      save(step);
      last_saved = step;
    }
  }

  // ---- the end: a stop signal saves first; a finished run validates once more ----
  summary.stop_signal = util::stop_signal();
  if (summary.stop_signal != 0) {
    progress.clear();
    util::log_warn("stop requested (signal " + std::to_string(summary.stop_signal) + ") at step " + std::to_string(step));
    if (last_saved != step && step > first_step) save(step);
  } else if (step < t.max_steps) {
    if (last_saved != step) save(step);  // a slice (stop_after_steps) ends with a checkpoint to resume from
  } else if (cfg.runtime.eval_every == 0 || step % cfg.runtime.eval_every != 0) {
    if (step > first_step) validate_now(step);
  }
  progress.clear();
  summary.step = step;
  summary.last_checkpoint = last_checkpoint;
  return summary;
}

}  // namespace bert::train
