// The model section resolved against init_from, the vocabulary and the sequence length.
#include "train/model_config.h"

#include <filesystem>

#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

namespace bert::train {
namespace fs = std::filesystem;

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

}  // namespace bert::train
