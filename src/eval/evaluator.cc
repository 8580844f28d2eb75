// Per-file masked-LM evaluation (data::prepare_dataset + data::EvalLoader + run::evaluate_mlm),
// the overall combination, and the table / JSON renderings.
#include "eval/evaluator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/masking.h"
#include "run/config.h"
#include "run/device.h"
#include "util/error.h"
#include "util/log.h"
#include "util/rng.h"

namespace bert::eval {
namespace fs = std::filesystem;

namespace {

nlohmann::json file_json(const FileMetrics& f) {
  nlohmann::json j = f.metrics.to_json();
  j["file"] = f.file;
  j["tokens_per_s"] = f.tokens_per_s();
  return j;
}

nlohmann::json masking_json(const data::MaskingOptions& m) {
  return {{"mask_prob", m.mask_prob}, {"mask_token_prob", m.mask_token_prob},
          {"random_token_prob", m.random_token_prob}, {"whole_word", m.whole_word},
          {"max_predictions_per_seq", m.max_predictions_per_seq}, {"at_least_one", m.at_least_one}};
}

std::string num(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Characters (code points) in UTF-8 text: what a column width counts.
size_t utf8_chars(const std::string& s) {
  size_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
  return chars;
}

// Left- or right-aligns `s` in a column of `width` characters.
std::string cell(const std::string& s, size_t width, bool left) {
  const size_t chars = utf8_chars(s);
  if (chars >= width) return s;
  const std::string pad(width - chars, ' ');
  return left ? s + pad : pad + s;
}

}  // namespace

nlohmann::json EvalReport::to_json() const {
  nlohmann::json j;
  j["checkpoint"] = checkpoint.string();
  j["step"] = step >= 0 ? nlohmann::json(step) : nlohmann::json();
  j["files"] = nlohmann::json::array();
  for (const auto& f : files) j["files"].push_back(file_json(f));
  j["overall"] = file_json(overall);
  j["settings"] = settings;
  return j;
}

run::MlmMetrics combine(const std::vector<FileMetrics>& files) {
  run::MlmMetrics all;
  double loss_sum = 0, top1 = 0, top5 = 0, nsp_correct = 0;
  int64_t nsp_sequences = 0;
  for (const auto& f : files) {
    const run::MlmMetrics& m = f.metrics;
    loss_sum += m.loss * static_cast<double>(m.predictions);
    top1 += std::round(m.accuracy * static_cast<double>(m.predictions));
    top5 += std::round(m.top5 * static_cast<double>(m.predictions));
    if (m.nsp_accuracy >= 0) {
      nsp_correct += std::round(m.nsp_accuracy * static_cast<double>(m.sequences));
      nsp_sequences += m.sequences;
    }
    all.predictions += m.predictions;
    all.sequences += m.sequences;
    all.tokens += m.tokens;
    all.seconds += m.seconds;
  }
  if (all.predictions > 0) {
    const double n = static_cast<double>(all.predictions);
    all.loss = loss_sum / n;
    all.accuracy = top1 / n;
    all.top5 = top5 / n;
    all.perplexity = std::exp(all.loss);
  }
  if (nsp_sequences > 0) all.nsp_accuracy = nsp_correct / static_cast<double>(nsp_sequences);
  return all;
}

data::DataOptions eval_data_options(const LoadedModel& m, const EvalOptions& o) {
  data::DataOptions d;
  if (m.run_config) {
    // Sequence layout as in training (cross_documents, short_seq_prob); packing is chosen by --nsp.
    d = m.run_config->data;
    d.train_files.clear();
  }
  d.valid_files = o.files;
  d.vocab_dir = m.dir;
  d.cache_dir = o.cache_dir.empty() ? default_cache_dir(m) : o.cache_dir;
  d.packing = o.nsp ? "nsp-pairs" : "full-sentences";
  d.on_stale_cache = "rebuild";
  d.tokenize_threads = 0;
  if (o.max_seq_len > 0) d.max_seq_len = o.max_seq_len;
  else if (!m.run_config) d.max_seq_len = 128;
  const int max_positions = m.model->config().max_position_embeddings;
  if (d.max_seq_len > max_positions) {
    throw util::usage_error("max_seq_len " + std::to_string(d.max_seq_len) + " exceeds the model's "
                            "max_position_embeddings " + std::to_string(max_positions) +
                            "; pass --max-seq-len " + std::to_string(max_positions) + " or less");
  }
  if (d.max_seq_len < 8) throw util::usage_error("max_seq_len must be at least 8, got " + std::to_string(d.max_seq_len));
  return d;
}

data::MaskingOptions eval_masking_options(const LoadedModel& m, const EvalOptions& o) {
  data::MaskingOptions k = o.masking ? *o.masking : run::standard_eval_masking();
  if (o.checkpoint_masking) {
    if (!m.run_config) {
      throw util::usage_error("--checkpoint-masking: " + m.dir.string() + " holds no run config (not written by "
                              "bert-train), so its training masking is unknown; give the masking flags instead");
    }
    k = m.run_config->masking;
  }
  data::validate(k);
  return k;
}

EvalReport evaluate(LoadedModel& m, const EvalOptions& o, const torch::Device& device) {
  if (o.files.empty()) throw util::usage_error("no validation files given; pass --data FILE...");
  if (o.batch_size < 1) throw util::usage_error("batch size must be positive, got " + std::to_string(o.batch_size));
  if (o.precision != "fp32" && o.precision != "bf16" && o.precision != "fp16") {
    throw util::usage_error("precision must be fp32, bf16 or fp16, got \"" + o.precision + "\"");
  }
  if (o.nsp && !m.has_nsp_head) {
    throw util::usage_error("--nsp needs a model with an NSP head; " + m.dir.string() +
                            " has none (a masked-LM-only model)");
  }
  const data::DataOptions d = eval_data_options(m, o);
  const data::MaskingOptions masking = eval_masking_options(m, o);

  EvalReport report;
  report.checkpoint = m.dir;
  report.step = m.step;
  report.settings = {{"seed", o.seed}, {"batch_size", o.batch_size}, {"precision", o.precision},
                     {"max_seq_len", d.max_seq_len}, {"packing", d.packing}, {"masking", masking_json(masking)},
                     {"max_batches", o.max_batches}, {"device", run::describe_device(device)},
                     {"cache_dir", d.cache_dir.string()}};
  for (const auto& file : o.files) {
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) {
      throw util::input_error("validation file " + file.string() + " does not exist or is not a file");
    }
    auto dataset = data::prepare_dataset({file}, m.vocab, d, o.seed);
    // The masking stream training's validation uses, so equal seeds give equal numbers.
    data::EvalLoader loader(dataset, o.batch_size, masking, util::derive_seed(o.seed, "valid"));
    FileMetrics f;
    f.file = file.string();
    f.metrics = run::evaluate_mlm(m.model, [&](data::HostBatch& b) { return loader.next(b); }, device,
                                    o.precision, o.max_batches);
    if (f.metrics.predictions == 0) {
      throw util::input_error("validation file " + file.string() + " gave no masked tokens to predict");
    }
    util::log_info(f.file + ": loss " + num("%.4f", f.metrics.loss) + ", top-1 " + num("%.4f", f.metrics.accuracy) +
                   ", " + num("%.0f tokens/s", f.tokens_per_s()));
    report.files.push_back(std::move(f));
  }
  report.overall.file = "overall";
  report.overall.metrics = combine(report.files);
  return report;
}

std::vector<EvalReport> evaluate_run(const fs::path& run_dir, const EvalOptions& o, const torch::Device& device) {
  std::vector<EvalReport> reports;
  size_t skipped = 0;
  for (const auto& dir : list_checkpoints(run_dir)) {
    LoadedModel m;
    try {
      m = load_model(dir, device);
    } catch (const util::Error& e) {
      if (e.kind() != util::ErrorKind::kInput) throw;
      util::log_warn(std::string("skipping: ") + e.what());
      ++skipped;
      continue;
    }
    util::log_info("evaluating " + dir.string());
    reports.push_back(evaluate(m, o, device));
  }
  if (reports.empty()) {
    throw util::input_error("none of the " + std::to_string(skipped) + " checkpoints in " + run_dir.string() +
                            " could be loaded; see the warnings above");
  }
  return reports;
}

nlohmann::json run_json(const fs::path& run_dir, const std::vector<EvalReport>& reports) {
  nlohmann::json j = {{"run_dir", run_dir.string()}, {"checkpoints", nlohmann::json::array()}};
  for (const auto& r : reports) j["checkpoints"].push_back(r.to_json());
  return j;
}

std::string format_table(const std::vector<EvalReport>& reports) {
  const std::vector<std::pair<std::string, size_t>> columns = {
      {"step", 8}, {"file", 0}, {"loss", 8}, {"top1", 7}, {"top5", 7}, {"ppl", 10},
      {"nsp", 7}, {"masked", 9}, {"tokens", 10}, {"tok/s", 10}};
  size_t file_width = 7;
  for (const auto& r : reports) {
    for (const auto& f : r.files) file_width = std::max(file_width, utf8_chars(f.file));
  }
  std::string out;
  for (size_t i = 0; i < columns.size(); ++i) {
    const auto& [name, width] = columns[i];
    out += (i ? "  " : "") + (name == "file" ? cell(name, file_width, true) : cell(name, width, false));
  }
  out += '\n';
  for (const auto& r : reports) {
    auto row = [&](const FileMetrics& f) {
      const run::MlmMetrics& m = f.metrics;
      std::string line = cell(r.step >= 0 ? std::to_string(r.step) : "-", 8, false) + "  ";
      line += cell(f.file, file_width, true) + "  ";
      line += cell(num("%.4f", m.loss), 8, false) + "  ";
      line += cell(num("%.4f", m.accuracy), 7, false) + "  ";
      line += cell(num("%.4f", m.top5), 7, false) + "  ";
      line += cell(num("%.2f", m.perplexity), 10, false) + "  ";
      line += cell(m.nsp_accuracy >= 0 ? num("%.4f", m.nsp_accuracy) : "-", 7, false) + "  ";
      line += cell(std::to_string(m.predictions), 9, false) + "  ";
      line += cell(std::to_string(m.tokens), 10, false) + "  ";
      line += cell(num("%.0f", f.tokens_per_s()), 10, false);
      out += line + "\n";
    };
    for (const auto& f : r.files) row(f);
    if (r.files.size() > 1) row(r.overall);
  }
  return out;
}

}  // namespace bert::eval
