// Model weights <-> safetensors files with Hugging Face names. Saving writes the tied decoder weight
// once (as transformers does); loading is strict: a missing, unexpected, mis-shaped or mis-typed
// tensor is an error naming the file and the key.
#pragma once

#include <filesystem>

#include "model/bert_model.h"

namespace bert::model {

// Writes every parameter and persistent buffer of `model` (fp32) to `path` atomically.
void save_weights(BertForPreTraining& model, const std::filesystem::path& path);
// Loads `path` into `model` (copying into existing parameters). Throws Error(kInput) on a corrupt
// file (header length, offsets, dtype, shape) or a key mismatch.
void load_weights(BertForPreTraining& model, const std::filesystem::path& path);

}  // namespace bert::model
