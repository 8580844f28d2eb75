// The model a training run builds: the config's model section (or a Hugging Face model's
// config.json), checked against the vocabulary and the sequence length.
#pragma once

#include <string>

#include "model/bert_config.h"
#include "run/config.h"
#include "wordpiece/vocab.h"

namespace bert::train {

// The model's config: cfg.model, or with training.init_from the config.json in that directory
// (keeping cfg.model's dropouts); vocab_size and pad_token_id come from `vocab`. Stores the result
// in cfg.model (what checkpoints record) and returns it. Throws Error(kUsage) naming `source` when
// a declared vocab_size differs from the vocabulary's or data.max_seq_len exceeds the model's
// max_position_embeddings, BertConfig::validate's errors for a bad model, and Error(kInput) for an
// unreadable or malformed config.json.
model::BertConfig resolve_model_config(run::RunConfig& cfg, const wordpiece::Vocab& vocab, const std::string& source);

}  // namespace bert::train
