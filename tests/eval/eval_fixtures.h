// Shared fixtures of the eval tests: a small vocabulary and corpus written on the fly, tiny random
// checkpoints (every parameter perturbed so mis-wiring shows), and running binaries / the Python oracle.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <string>

#include "model/bert_model.h"
#include "wordpiece/vocab.h"

namespace bert::eval::testing {

namespace fs = std::filesystem;

// A fresh empty directory under the system temp dir (unique per process and name).
fs::path fresh_dir(const std::string& name);

// Writes `dir`/vocab.txt + tokenizer_config.json (lowercasing BERT settings): the specials, a-z and
// ##a-##z (so any ASCII word has pieces), punctuation and the words write_corpus draws from.
std::shared_ptr<const wordpiece::Vocab> write_vocab(const fs::path& dir);

// Writes a BERT-text corpus of `documents` documents (3-7 sentences of 4-12 words, Zipf-like word
// frequencies, blank line between documents), deterministic in `seed`.
void write_corpus(const fs::path& file, int documents, uint64_t seed);

// hidden 32, 2 layers, 4 heads, intermediate 37, 64 positions.
model::BertConfig tiny_config(int vocab_size);

// A tiny model whose every parameter is random (biases and LayerNorms too), deterministic in `seed`.
model::BertForPreTraining perturbed_model(int vocab_size, uint64_t seed);

// train::save_checkpoint of `model` as run_dir/step-XXXXXXX with a trainer_state carrying a resolved
// run config (data.max_seq_len = 32, training.seed = 42). Returns the checkpoint dir.
fs::path save_tiny_checkpoint(const fs::path& run_dir, model::BertForPreTraining& model,
                              const wordpiece::Vocab& vocab, int64_t step);

// Runs `command` through /bin/sh; stdout and stderr are captured into `*out` / `*err` (if non-null).
// Returns the exit status (or -1 if it did not exit normally).
int run(const std::string& command, std::string* out = nullptr, std::string* err = nullptr);

// Path of a binary built in this tree (src/cli/NAME).
std::string binary(const std::string& name);
// $BERT_PYTHON, with a test failure (not a skip) when it is unset.
std::string python();
// scripts/oracle/hf_bridge_oracle.py.
std::string oracle_script();
// Single-quotes `s` for /bin/sh.
std::string quote(const std::string& s);

}  // namespace bert::eval::testing
