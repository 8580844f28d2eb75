// Model weights <-> safetensors files with Hugging Face names. Saving writes the tied decoder weight
// once (as transformers does); loading is strict: a missing, unexpected, mis-shaped or mis-typed
// tensor is an error naming the file and the key.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "model/bert_model.h"

namespace bert::model {

// Writes every parameter and persistent buffer of `model` (fp32) to `path` atomically.
// (The model has no persistent buffers: transformers' position_ids/token_type_ids are not saved.)
void save_weights(BertForPreTraining& model, const std::filesystem::path& path);
// Loads `path` into `model` (copying into existing parameters). Throws Error(kInput) on a corrupt
// file (header length, offsets, dtype, shape) or a key mismatch.
// F32, F16 and BF16 tensors are accepted and converted to each parameter's dtype and device.
// Tolerated extra keys: cls.predictions.decoder.weight and cls.predictions.decoder.bias (tied
// duplicates; they must equal the word embeddings / cls.predictions.bias, since untied decoders are
// not supported) and bert.embeddings.position_ids (a buffer older transformers saved). Nothing is
// copied unless the whole file validates.
// With `allow_missing_nsp_head`, the pooler and NSP classifier (bert.pooler.*, cls.seq_relationship.*)
// may be absent, as in a transformers BertForMaskedLM file; they then keep their initialisation.
struct LoadOptions {
  bool allow_missing_nsp_head = false;
};
void load_weights(BertForPreTraining& model, const std::filesystem::path& path, const LoadOptions& options = {});
// True if `path` holds the complete pooler + NSP head (validating the file).
bool has_nsp_head(const std::filesystem::path& path);

// A Hugging Face model directory: `dir`/config.json (BertConfig::to_hf_json) and
// `dir`/model.safetensors, each written atomically; `dir` is created if needed. transformers'
// BertForPreTraining.from_pretrained(dir) loads it (for norm == "post").
void save_pretrained(BertForPreTraining& model, const std::filesystem::path& dir);
// Builds a model from `dir`/config.json and loads `dir`/model.safetensors (CPU, fp32).
// Throws Error(kInput) naming the file on any problem.
BertForPreTraining load_pretrained(const std::filesystem::path& dir);

// Generic tensor files (test fixtures, exchange with Python): every tensor of a safetensors file as
// a CPU tensor of its stored dtype (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL).
std::map<std::string, torch::Tensor> load_tensors(const std::filesystem::path& path);
// Writes tensors (any device; dtypes as above) to `path` atomically, in their own dtype.
void save_tensors(const std::filesystem::path& path, const std::map<std::string, torch::Tensor>& tensors);

}  // namespace bert::model
