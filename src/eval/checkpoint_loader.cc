// Resolving checkpoint / run / Hugging Face dirs and loading model + vocabulary from them.
#include "eval/checkpoint_loader.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "model/safetensors.h"
#include "model/weights.h"
#include "run/checkpoint_format.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

namespace bert::eval {
namespace fs = std::filesystem;

namespace {

bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// "step-0000500" -> 500; -1 for anything else (temporaries included).
int64_t step_of(const fs::path& dir) {
  const std::string name = dir.filename().string();
  if (name.size() <= 5 || name.rfind("step-", 0) != 0) return -1;
  if (name.find_first_not_of("0123456789", 5) != std::string::npos) return -1;
  return std::stoll(name.substr(5));
}

bool is_run_dir(const fs::path& dir) {
  if (present(dir / "latest")) return true;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory() && step_of(e.path()) >= 0) return true;
  }
  return false;
}

const char* kKnownLayouts =
    "expected a checkpoint dir (manifest.json, model.safetensors, config.json, vocab.txt, "
    "trainer_state.json), a run dir (latest, step-*/), or a Hugging Face BERT dir (config.json, "
    "model.safetensors, vocab.txt)";


// Loads `weights` into `m`; returns false when the file had no NSP head (which then stays at init).
bool load_weights_into(model::BertForPreTraining& m, const fs::path& weights) {
  if (model::has_nsp_head(weights)) {  // validates header, offsets, dtypes and shapes
    model::load_weights(m, weights);
    return true;
  }
  model::load_weights(m, weights, {/*allow_missing_nsp_head=*/true});
  util::log_warn(weights.string() + " has no complete pooler/NSP head (a masked-LM-only model): "
                 "NSP accuracy is not reported");
  return false;
}

std::optional<run::RunConfig> read_run_config(const fs::path& state_file, const nlohmann::json& state) {
  if (!state.contains("run_config")) return std::nullopt;
  try {
    return run::parse_run_config(state["run_config"], state_file.string() + " (run_config)");
  } catch (const util::Error& e) {
    util::log_warn(std::string("ignoring the run config stored in the checkpoint: ") + e.what());
    return std::nullopt;
  }
}

}  // namespace

fs::path resolve_model_dir(const fs::path& path_in, SourceKind* kind) {
  fs::path path = path_in.lexically_normal();
  if (!path.has_filename() && path.has_parent_path()) path = path.parent_path();  // "dir/" -> "dir"
  std::error_code ec;
  if (!fs::exists(path, ec)) throw util::input_error(path.string() + " does not exist; " + kKnownLayouts);
  if (!fs::is_directory(path, ec)) throw util::input_error(path.string() + " is not a directory; " + kKnownLayouts);
  if (present(path / "manifest.json")) {
    const std::string why = run::verify_checkpoint(path);
    if (!why.empty()) throw util::input_error("checkpoint " + path.string() + " is damaged: " + why);
    *kind = SourceKind::kCheckpoint;
    return path;
  }
  if (present(path / "config.json") && !present(path / "trainer_state.json")) {
    std::vector<std::string> missing;
    for (const char* f : {"model.safetensors", "vocab.txt"}) {
      if (!present(path / f)) missing.push_back(f);
    }
    if (!missing.empty()) {
      std::string names;
      for (const auto& m : missing) names += (names.empty() ? "" : " and ") + m;
      const bool fast_only = present(path / "tokenizer.json") && !present(path / "vocab.txt");
      throw util::input_error("the Hugging Face model dir " + path.string() + " has no " + names +
                              " (it needs config.json, model.safetensors and vocab.txt)" +
                              (fast_only ? "; it has only tokenizer.json: write vocab.txt with "
                                           "AutoTokenizer.from_pretrained(dir).backend_tokenizer.model.save(dir)" : ""));
    }
    *kind = SourceKind::kHuggingFace;
    return path;
  }
  if (present(path / "trainer_state.json")) {
    throw util::input_error("checkpoint " + path.string() + " has no manifest.json (an incomplete checkpoint?)");
  }
  if (is_run_dir(path)) {
    std::optional<fs::path> latest = run::find_latest_checkpoint(path);
    if (!latest) {
      throw util::input_error("the run dir " + path.string() + " holds no valid checkpoint (each step-* dir "
                              "is incomplete or damaged; see the warnings above)");
    }
    *kind = SourceKind::kCheckpoint;
    return *latest;
  }
  throw util::input_error(path.string() + " holds no model: " + kKnownLayouts);
}

LoadedModel load_model(const fs::path& path, const torch::Device& device) {
  LoadedModel out;
  out.dir = resolve_model_dir(path, &out.kind);
  const fs::path config_file = out.dir / "config.json";
  model::BertConfig config =
      model::BertConfig::from_hf_json(util::parse_json_file(config_file, util::ErrorKind::kInput), config_file.string());
  out.vocab = std::make_shared<const wordpiece::Vocab>(wordpiece::Vocab::load(out.dir));
  out.vocab->require_sequence_tokens("bert-eval");
  if (config.vocab_size != out.vocab->size()) {
    throw util::input_error(config_file.string() + " says vocab_size " + std::to_string(config.vocab_size) +
                            " but " + (out.dir / "vocab.txt").string() + " holds " +
                            std::to_string(out.vocab->size()) +
                            " tokens: the vocabulary does not belong to this model");
  }
  if (config.pad_token_id != out.vocab->pad_id()) {
    util::log_warn(config_file.string() + ": pad_token_id " + std::to_string(config.pad_token_id) +
                   " differs from the id of " + out.vocab->config().pad_token + " in vocab.txt (" +
                   std::to_string(out.vocab->pad_id()) + "); padding uses the vocabulary's");
  }
  if (out.kind == SourceKind::kCheckpoint) {
    const fs::path state_file = out.dir / "trainer_state.json";
    nlohmann::json state = run::read_trainer_state(out.dir, &out.step);
    out.run_config = read_run_config(state_file, state);
  }
  out.model = model::BertForPreTraining(config);
  out.has_nsp_head = load_weights_into(out.model, out.dir / "model.safetensors");
  out.model->to(device);
  out.model->eval();
  return out;
}

std::vector<fs::path> list_checkpoints(const fs::path& run_dir) {
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) throw util::input_error(run_dir.string() + " is not a run directory");
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    if (e.is_directory() && step_of(e.path()) >= 0) dirs.push_back(e.path());
  }
  if (dirs.empty()) throw util::input_error("the run dir " + run_dir.string() + " holds no step-* checkpoints");
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) { return step_of(a) < step_of(b); });
  return dirs;
}

fs::path default_cache_dir(const LoadedModel& m) {
  if (m.kind == SourceKind::kCheckpoint && step_of(m.dir) >= 0) {
    const fs::path run_dir = fs::absolute(m.dir).parent_path();
    if (present(run_dir / "latest") || present(run_dir / "run_config.json")) return run_dir / "cache";
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(m.vocab->fingerprint()));
  return fs::temp_directory_path() / ("bert-eval-cache-" + std::to_string(::getuid())) / hex;
}

}  // namespace bert::eval
