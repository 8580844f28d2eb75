// Strict parsing of the run config into typed structs, overrides, and the resolved JSON.
#include "run/config.h"

#include <cctype>
#include <cmath>
#include <set>

#include "util/error.h"
#include "util/json.h"

namespace bert::run {
namespace fs = std::filesystem;
using util::JsonSection;

namespace {

template <typename T>
void check_range(JsonSection& s, const std::string& key, T value, T lo, T hi, const std::string& what) {
  if (value < lo || value > hi) s.fail(key, "= " + std::to_string(value) + " is out of range: " + what);
}

void check_choice(JsonSection& s, const std::string& key, const std::string& value,
                  const std::set<std::string>& choices) {
  if (choices.count(value)) return;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  s.fail(key, "= \"" + value + "\" is not one of: " + list);
}

std::vector<fs::path> to_paths(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

std::vector<std::string> to_strings(const std::vector<fs::path>& v) {
  std::vector<std::string> out;
  for (const auto& p : v) out.push_back(p.string());
  return out;
}

void parse_model(const nlohmann::json& j, const std::string& src, model::BertConfig& m) {
  JsonSection s(j, src, "model");
  m.vocab_size = s.get("vocab_size", 0);  // 0: taken from the vocabulary
  m.hidden_size = s.get("hidden_size", m.hidden_size);
  m.num_layers = s.get("num_layers", m.num_layers);
  m.num_heads = s.get("num_heads", m.num_heads);
  m.intermediate_size = s.get("intermediate_size", m.intermediate_size);
  m.max_position_embeddings = s.get("max_position_embeddings", m.max_position_embeddings);
  m.type_vocab_size = s.get("type_vocab_size", m.type_vocab_size);
  m.hidden_dropout = s.get("hidden_dropout", m.hidden_dropout);
  m.attention_dropout = s.get("attention_dropout", m.attention_dropout);
  m.layer_norm_eps = s.get("layer_norm_eps", m.layer_norm_eps);
  m.initializer_range = s.get("initializer_range", m.initializer_range);
  m.norm = s.get("norm", m.norm);
  m.activation = s.get("activation", m.activation);
  m.init = s.get("init", m.init);
  s.finish();
  check_range(s, "hidden_size", m.hidden_size, 1, 1 << 16, "must be positive");
  check_range(s, "num_layers", m.num_layers, 1, 1024, "must be positive");
  check_range(s, "num_heads", m.num_heads, 1, 1024, "must be positive");
  if (m.hidden_size % m.num_heads != 0) {
    s.fail("hidden_size", "= " + std::to_string(m.hidden_size) + " is not divisible by model.num_heads = " +
                              std::to_string(m.num_heads) + " (each head gets hidden_size / num_heads dimensions)");
  }
  check_range(s, "intermediate_size", m.intermediate_size, 1, 1 << 18, "must be positive");
  check_range(s, "max_position_embeddings", m.max_position_embeddings, 2, 1 << 16, "must be at least 2");
  check_range(s, "type_vocab_size", m.type_vocab_size, 1, 64, "must be 1..64");
  check_range(s, "hidden_dropout", m.hidden_dropout, 0.0, 0.99, "must be in [0, 1)");
  check_range(s, "attention_dropout", m.attention_dropout, 0.0, 0.99, "must be in [0, 1)");
  check_choice(s, "norm", m.norm, {"post", "pre"});
  check_choice(s, "activation", m.activation, {"gelu", "gelu_new", "relu"});
  check_choice(s, "init", m.init, {"normal", "local"});
}

void parse_data(const nlohmann::json& j, const std::string& src, data::DataOptions& d) {
  JsonSection s(j, src, "data");
  d.train_files = to_paths(s.require<std::vector<std::string>>("train_files"));
  d.valid_files = to_paths(s.get("valid_files", std::vector<std::string>{}));
  d.vocab_dir = s.require<std::string>("vocab_dir");
  d.cache_dir = s.get("cache_dir", std::string());
  d.max_seq_len = s.get("max_seq_len", d.max_seq_len);
  d.packing = s.get("packing", d.packing);
  d.cross_documents = s.get("cross_documents", d.cross_documents);
  d.short_seq_prob = s.get("short_seq_prob", d.short_seq_prob);
  d.on_stale_cache = s.get("on_stale_cache", d.on_stale_cache);
  d.on_bad_line = s.get("on_bad_line", d.on_bad_line);
  d.tokenize_threads = s.get("tokenize_threads", d.tokenize_threads);
  bool nsp = s.get("nsp", d.packing == "nsp-pairs");
  s.finish();
  if (d.train_files.empty()) s.fail("train_files", "is empty; list at least one corpus file");
  check_range(s, "max_seq_len", d.max_seq_len, 8, 1 << 16, "must be at least 8");
  check_choice(s, "packing", d.packing, {"full-sentences", "nsp-pairs"});
  if (nsp && d.packing != "nsp-pairs") {
    s.fail("nsp", "= true needs data.packing = \"nsp-pairs\" (sentence pairs), not \"" + d.packing + "\"");
  }
  check_range(s, "short_seq_prob", d.short_seq_prob, 0.0, 1.0, "must be in [0, 1]");
  check_choice(s, "on_stale_cache", d.on_stale_cache, {"rebuild", "error"});
  check_choice(s, "on_bad_line", d.on_bad_line, {"skip", "fail"});
}

void parse_masking(const nlohmann::json& j, const std::string& src, data::MaskingOptions& m) {
  JsonSection s(j, src, "masking");
  m.mask_prob = s.get("mask_prob", m.mask_prob);
  m.mask_token_prob = s.get("mask_token_prob", m.mask_token_prob);
  m.random_token_prob = s.get("random_token_prob", m.random_token_prob);
  m.whole_word = s.get("whole_word", m.whole_word);
  m.max_predictions_per_seq = s.get("max_predictions_per_seq", m.max_predictions_per_seq);
  m.at_least_one = s.get("at_least_one", m.at_least_one);
  s.finish();
  check_range(s, "mask_prob", m.mask_prob, 0.0, 1.0, "must be in (0, 1]");
  if (m.mask_prob <= 0) s.fail("mask_prob", "must be above 0: with nothing masked there is nothing to learn");
  check_range(s, "mask_token_prob", m.mask_token_prob, 0.0, 1.0, "must be in [0, 1]");
  check_range(s, "random_token_prob", m.random_token_prob, 0.0, 1.0, "must be in [0, 1]");
  if (m.mask_token_prob + m.random_token_prob > 1.0 + 1e-9) {
    s.fail("random_token_prob", "+ masking.mask_token_prob exceeds 1 (the rest stays unchanged)");
  }
  check_range(s, "max_predictions_per_seq", m.max_predictions_per_seq, 0, 1 << 16, "0 (no cap) or positive");
}

void parse_training(const nlohmann::json& j, const std::string& src, TrainingOptions& t) {
  JsonSection s(j, src, "training");
  t.batch_size = s.get("batch_size", t.batch_size);
  t.grad_accum_steps = s.get("grad_accum_steps", t.grad_accum_steps);
  const nlohmann::json budget = s.get<nlohmann::json>("time_budget", nullptr);
  if (budget.is_number()) {
    t.time_budget_s = budget.get<double>();
  } else if (budget.is_string()) {
    t.time_budget_s = parse_duration_s(budget.get<std::string>(), src + ": training.time_budget");
  } else if (!budget.is_null()) {
    s.fail("time_budget", "has the wrong type: expected seconds or a duration such as \"8m\", \"2h\", \"1h30m\", got " +
                              util::dump_for_message(budget));
  }
  if (!(t.time_budget_s >= 0 && std::isfinite(t.time_budget_s)) || t.time_budget_s > 366.0 * 86400) {
    s.fail("time_budget", "must be a duration from 0 (none) to 366 days");
  }
  // With a budget, max_steps is only a cap, and none unless given.
  t.max_steps = s.get("max_steps", t.time_budget_s > 0 ? int64_t{0} : t.max_steps);
  t.target_accuracy = s.get("target_accuracy", t.target_accuracy);
  t.lr = s.get("lr", t.lr);
  t.warmup_steps = s.get("warmup_steps", t.warmup_steps);
  t.schedule = s.get("schedule", t.schedule);
  t.min_lr_ratio = s.get("min_lr_ratio", t.min_lr_ratio);
  t.weight_decay = s.get("weight_decay", t.weight_decay);
  t.adam_betas = s.get("adam_betas", t.adam_betas);
  t.adam_eps = s.get("adam_eps", t.adam_eps);
  t.clip_grad_norm = s.get("clip_grad_norm", t.clip_grad_norm);
  t.precision = s.get("precision", t.precision);
  t.seed = static_cast<uint64_t>(s.get<int64_t>("seed", static_cast<int64_t>(t.seed)));
  t.max_bad_steps = s.get("max_bad_steps", t.max_bad_steps);
  t.init_from = s.get("init_from", t.init_from);
  s.finish();
  check_range(s, "batch_size", t.batch_size, 1, 1 << 20, "must be positive");
  check_range(s, "grad_accum_steps", t.grad_accum_steps, 1, 1 << 16, "must be positive");
  if (t.time_budget_s > 0) {
    check_range<int64_t>(s, "max_steps", t.max_steps, 0, int64_t{1} << 40, "must be >= 0 (0 = as many as the time_budget allows)");
  } else {
    check_range<int64_t>(s, "max_steps", t.max_steps, 1, int64_t{1} << 40, "must be positive (or set training.time_budget)");
  }
  check_range(s, "target_accuracy", t.target_accuracy, 0.0, 1.0, "must be in [0, 1] (0 = off)");
  check_range(s, "lr", t.lr, 0.0, 10.0, "must be in [0, 10]");
  check_range<int64_t>(s, "warmup_steps", t.warmup_steps, 0, int64_t{1} << 40, "must be >= 0");
  check_choice(s, "schedule", t.schedule, {"linear", "cosine", "constant"});
  check_range(s, "min_lr_ratio", t.min_lr_ratio, 0.0, 1.0, "must be in [0, 1]");
  check_range(s, "weight_decay", t.weight_decay, 0.0, 1.0, "must be in [0, 1]");
  if (t.adam_betas.size() != 2 || t.adam_betas[0] < 0 || t.adam_betas[0] >= 1 || t.adam_betas[1] < 0 ||
      t.adam_betas[1] >= 1) {
    s.fail("adam_betas", "must be two numbers in [0, 1), e.g. [0.9, 0.98]");
  }
  check_range(s, "adam_eps", t.adam_eps, 0.0, 1.0, "must be in [0, 1]");
  check_range(s, "clip_grad_norm", t.clip_grad_norm, 0.0, 1e6, "must be >= 0 (0 = off)");
  check_choice(s, "precision", t.precision, {"auto", "fp32", "bf16", "fp16"});
  check_range(s, "max_bad_steps", t.max_bad_steps, 1, 1 << 20, "must be positive");
}

void parse_checkpoint(const nlohmann::json& j, const std::string& src, CheckpointOptions& c) {
  JsonSection s(j, src, "checkpoint");
  c.dir = s.get("dir", c.dir.string());
  c.every = s.get("every", c.every);
  c.keep_last = s.get("keep_last", c.keep_last);
  c.resume = s.get("resume", c.resume);
  s.finish();
  check_range<int64_t>(s, "every", c.every, 1, int64_t{1} << 40, "must be positive");
  check_range(s, "keep_last", c.keep_last, 0, 1 << 20, "must be >= 0 (0 = keep all)");
}

void parse_runtime(const nlohmann::json& j, const std::string& src, RuntimeOptions& r) {
  JsonSection s(j, src, "runtime");
  r.device = s.get("device", r.device);
  r.threads = s.get("threads", r.threads);
  r.log_every = s.get("log_every", r.log_every);
  r.eval_every = s.get("eval_every", r.eval_every);
  r.eval_max_batches = s.get("eval_max_batches", r.eval_max_batches);
  r.stop_after_steps = s.get("stop_after_steps", r.stop_after_steps);
  r.attention_backend = s.get("attention_backend", r.attention_backend);
  r.tf32 = s.get("tf32", r.tf32);
  r.cuda_sync_debug = s.get("cuda_sync_debug", r.cuda_sync_debug);
  r.backend = s.get("backend", r.backend);
  r.dist_timeout_s = s.get("dist_timeout_s", r.dist_timeout_s);
  r.grad_sync_overlap = s.get("grad_sync_overlap", r.grad_sync_overlap);
  r.tensorboard = s.get("tensorboard", r.tensorboard);
  s.finish();
  bool device_ok = r.device == "auto" || r.device == "cpu" || r.device == "cuda" ||
                   (r.device.rfind("cuda:", 0) == 0 && r.device.size() > 5 &&
                    r.device.find_first_not_of("0123456789", 5) == std::string::npos);
  if (!device_ok) s.fail("device", "= \"" + r.device + "\" is not one of: auto, cpu, cuda, cuda:N");
  check_range(s, "threads", r.threads, 0, 4096, "must be >= 0 (0 = all cores)");
  check_range<int64_t>(s, "log_every", r.log_every, 1, int64_t{1} << 40, "must be positive");
  check_range<int64_t>(s, "eval_every", r.eval_every, 0, int64_t{1} << 40, "must be >= 0");
  check_range<int64_t>(s, "eval_max_batches", r.eval_max_batches, 0, int64_t{1} << 40, "must be >= 0");
  check_range<int64_t>(s, "stop_after_steps", r.stop_after_steps, 0, int64_t{1} << 40, "must be >= 0");
  check_choice(s, "attention_backend", r.attention_backend, {"auto", "flash", "efficient", "cudnn", "math"});
  check_choice(s, "cuda_sync_debug", r.cuda_sync_debug, {"off", "warn", "error"});
  check_choice(s, "backend", r.backend, {"auto", "gloo", "nccl"});
  check_range(s, "dist_timeout_s", r.dist_timeout_s, 1, 86400, "must be in [1, 86400] seconds");
}

}  // namespace

double parse_duration_s(const std::string& text, const std::string& what) {
  auto fail = [&] {
    throw util::usage_error(what + " = \"" + text + "\" is not a duration: give seconds (600) or hours, minutes and "
                            "seconds such as \"8m\", \"2h\", \"1h30m\", \"90s\"");
  };
  double total = 0;
  size_t i = 0;
  bool any = false;
  std::string last_unit;
  while (i < text.size()) {
    if (text[i] == ' ') { ++i; continue; }
    size_t used = 0;
    double value = 0;
    try {
      value = std::stod(text.substr(i), &used);
    } catch (const std::exception&) {
      fail();
    }
    if (used == 0 || !(value >= 0) || !std::isfinite(value)) fail();
    // std::stod also reads "inf", "nan", hex and exponents: only digits and one dot are a duration.
    for (size_t k = i; k < i + used; ++k) if (!(std::isdigit(static_cast<unsigned char>(text[k])) || text[k] == '.')) fail();
    i += used;
    char unit = i < text.size() ? text[i] : 's';
    if (i < text.size()) ++i;
    if (unit == 'h') total += value * 3600;
    else if (unit == 'm') total += value * 60;
    else if (unit == 's') total += value;
    else fail();
    if (!last_unit.empty() && std::string("hms").find(unit) <= std::string("hms").find(last_unit[0])) fail();  // 1m2h
    last_unit = std::string(1, unit);
    any = true;
  }
  if (!any) fail();
  return total;
}

data::MaskingOptions standard_eval_masking() { return data::MaskingOptions{}; }

bool same_masking(const data::MaskingOptions& a, const data::MaskingOptions& b) {
  return a.mask_prob == b.mask_prob && a.mask_token_prob == b.mask_token_prob &&
         a.random_token_prob == b.random_token_prob && a.whole_word == b.whole_word &&
         a.max_predictions_per_seq == b.max_predictions_per_seq && a.at_least_one == b.at_least_one;
}

RunConfig parse_run_config(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw util::usage_error(source + ": the config must be a JSON object with sections");
  JsonSection top(j, source, "");
  RunConfig c;
  parse_model(top.child("model") ? *top.child("model") : nlohmann::json(), source, c.model);
  const nlohmann::json* data = top.child("data");
  if (data == nullptr) top.fail("data", "section is required (train_files, vocab_dir)");
  parse_data(*data, source, c.data);
  parse_masking(top.child("masking") ? *top.child("masking") : nlohmann::json(), source, c.masking);
  parse_training(top.child("training") ? *top.child("training") : nlohmann::json(), source, c.training);
  parse_checkpoint(top.child("checkpoint") ? *top.child("checkpoint") : nlohmann::json(), source, c.checkpoint);
  parse_runtime(top.child("runtime") ? *top.child("runtime") : nlohmann::json(), source, c.runtime);
  top.finish();
  if (c.data.cache_dir.empty()) c.data.cache_dir = c.checkpoint.dir / "cache";
  if (c.training.target_accuracy > 0 && (c.data.valid_files.empty() || c.runtime.eval_every == 0)) {
    throw util::usage_error(source + ": training.target_accuracy needs validation during the run: set data.valid_files "
                            "and runtime.eval_every > 0 (the run stops at the first validation that reaches it)");
  }
  if (c.data.max_seq_len > c.model.max_position_embeddings) {
    throw util::usage_error(source + ": data.max_seq_len = " + std::to_string(c.data.max_seq_len) +
                            " exceeds model.max_position_embeddings = " +
                            std::to_string(c.model.max_position_embeddings) +
                            "; lower max_seq_len or raise max_position_embeddings");
  }
  return c;
}

void apply_override(nlohmann::json& j, const std::string& assignment) {
  auto eq = assignment.find('=');
  auto dot = assignment.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq || dot == 0 || dot + 1 == eq) {
    throw util::usage_error("--set \"" + assignment + "\": expected section.key=value, e.g. training.lr=1e-4");
  }
  try {
    (void)nlohmann::json(assignment).dump();  // throws on invalid UTF-8, which no JSON file may hold
  } catch (const nlohmann::json::type_error&) {
    throw util::usage_error("--set: the assignment is not valid UTF-8 text; type the value as UTF-8");
  }
  std::string section = assignment.substr(0, dot);
  std::string key = assignment.substr(dot + 1, eq - dot - 1);
  std::string text = assignment.substr(eq + 1);
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {  // parse_error, or out_of_range for a number like 1e999
    value = text;  // a bare string such as device=cpu (a key that wants a number then names itself)
  }
  if (!j.is_object()) {  // e.g. a config file holding [] or 5: its own error comes later, never type_error
    throw util::usage_error("--set " + assignment + ": the config must be a JSON object with sections, got " +
                            util::dump_for_message(j).substr(0, 80));
  }
  if (!j.contains(section)) j[section] = nlohmann::json::object();
  if (!j[section].is_object()) throw util::usage_error("--set " + assignment + ": " + section + " is not a section");
  j[section][key] = value;
}

RunConfig load_run_config(const fs::path& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw util::usage_error("config file " + path.string() + " does not exist; see configs/ for examples");
  }
  nlohmann::json j = util::parse_json_file(path, util::ErrorKind::kUsage);
  for (const auto& o : overrides) apply_override(j, o);
  return parse_run_config(j, path.string());
}

nlohmann::json to_json(const RunConfig& c) {
  const auto& m = c.model;
  const auto& d = c.data;
  const auto& k = c.masking;
  const auto& t = c.training;
  return {
      {"model", {{"vocab_size", m.vocab_size}, {"hidden_size", m.hidden_size}, {"num_layers", m.num_layers},
                 {"num_heads", m.num_heads}, {"intermediate_size", m.intermediate_size},
                 {"max_position_embeddings", m.max_position_embeddings}, {"type_vocab_size", m.type_vocab_size},
                 {"hidden_dropout", m.hidden_dropout}, {"attention_dropout", m.attention_dropout},
                 {"layer_norm_eps", m.layer_norm_eps}, {"initializer_range", m.initializer_range},
                 {"norm", m.norm}, {"activation", m.activation}, {"init", m.init}}},
      {"data", {{"train_files", to_strings(d.train_files)}, {"valid_files", to_strings(d.valid_files)},
                {"vocab_dir", d.vocab_dir.string()}, {"cache_dir", d.cache_dir.string()},
                {"max_seq_len", d.max_seq_len}, {"packing", d.packing}, {"nsp", d.nsp()},
                {"cross_documents", d.cross_documents}, {"short_seq_prob", d.short_seq_prob},
                {"on_stale_cache", d.on_stale_cache}, {"on_bad_line", d.on_bad_line},
                {"tokenize_threads", d.tokenize_threads}}},
      {"masking", {{"mask_prob", k.mask_prob}, {"mask_token_prob", k.mask_token_prob},
                   {"random_token_prob", k.random_token_prob}, {"whole_word", k.whole_word},
                   {"max_predictions_per_seq", k.max_predictions_per_seq}, {"at_least_one", k.at_least_one}}},
      {"training", {{"batch_size", t.batch_size}, {"grad_accum_steps", t.grad_accum_steps},
                    {"max_steps", t.max_steps}, {"time_budget", t.time_budget_s},
                    {"target_accuracy", t.target_accuracy}, {"lr", t.lr}, {"warmup_steps", t.warmup_steps},
                    {"schedule", t.schedule}, {"min_lr_ratio", t.min_lr_ratio},
                    {"weight_decay", t.weight_decay}, {"adam_betas", t.adam_betas}, {"adam_eps", t.adam_eps},
                    {"clip_grad_norm", t.clip_grad_norm}, {"precision", t.precision},
                    {"seed", t.seed}, {"max_bad_steps", t.max_bad_steps}, {"init_from", t.init_from}}},
      {"checkpoint", {{"dir", c.checkpoint.dir.string()}, {"every", c.checkpoint.every},
                      {"keep_last", c.checkpoint.keep_last}, {"resume", c.checkpoint.resume}}},
      {"runtime", {{"device", c.runtime.device}, {"threads", c.runtime.threads},
                   {"log_every", c.runtime.log_every}, {"eval_every", c.runtime.eval_every},
                   {"eval_max_batches", c.runtime.eval_max_batches},
                   {"stop_after_steps", c.runtime.stop_after_steps},
                   {"attention_backend", c.runtime.attention_backend}, {"tf32", c.runtime.tf32},
                   {"cuda_sync_debug", c.runtime.cuda_sync_debug}, {"backend", c.runtime.backend},
                   {"dist_timeout_s", c.runtime.dist_timeout_s}, {"grad_sync_overlap", c.runtime.grad_sync_overlap},
                   {"tensorboard", c.runtime.tensorboard}}},
  };
}

void validate(const RunConfig& c, const std::string& source) {
  auto check_file = [&](const fs::path& p, const std::string& key, bool dir_ok = false) {
    std::error_code ec;
    if (!fs::exists(p, ec)) {
      throw util::usage_error(source + ": " + key + ": " + p.string() + " does not exist");
    }
    if (fs::is_directory(p, ec) && !dir_ok) {
      throw util::usage_error(source + ": " + key + ": " + p.string() + " is a directory; list files");
    }
  };
  for (const auto& f : c.data.train_files) check_file(f, "data.train_files");
  for (const auto& f : c.data.valid_files) check_file(f, "data.valid_files");
  check_file(c.data.vocab_dir, "data.vocab_dir", true);
  if (!c.training.init_from.empty()) check_file(c.training.init_from, "training.init_from", true);
  if (c.training.precision == "fp16" && c.runtime.device == "cpu") {
    throw util::usage_error(source + ": training.precision = \"fp16\" needs a CUDA device; on CPU use \"auto\", \"fp32\" or \"bf16\"");
  }
}

}  // namespace bert::run
