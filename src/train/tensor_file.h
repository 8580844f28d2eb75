// Named tensors <-> a safetensors file (for optimizer state), on top of the model layer's reader
// and writer.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

namespace bert::train {

// Writes CPU-contiguous copies of `tensors` to `path` atomically. Throws Error(kIo).
void save_tensor_file(const std::map<std::string, torch::Tensor>& tensors, const std::filesystem::path& path);
// Reads every tensor of a safetensors file. Throws Error(kInput) naming the file if corrupt.
std::map<std::string, torch::Tensor> load_tensor_file(const std::filesystem::path& path);

}  // namespace bert::train
