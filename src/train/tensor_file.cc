// Named fp32 tensors <-> safetensors, via the model layer's torch-free reader/writer.
#include "train/tensor_file.h"

#include <cstring>

#include "model/safetensors.h"
#include "util/error.h"

namespace bert::train {

void save_tensor_file(const std::map<std::string, torch::Tensor>& tensors, const std::filesystem::path& path) {
  std::vector<torch::Tensor> keep;  // CPU fp32 contiguous copies, alive until written
  std::vector<model::SafetensorView> views;
  for (const auto& [name, t] : tensors) {
    torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    keep.push_back(c);
    views.push_back({name, "F32", c.sizes().vec(), c.data_ptr(), static_cast<size_t>(c.numel()) * 4});
  }
  model::write_safetensors(path, views);
}

std::map<std::string, torch::Tensor> load_tensor_file(const std::filesystem::path& path) {
  model::SafetensorsFile file(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, info] : file.tensors()) {
    if (info.dtype != "F32") {
      throw util::input_error(path.string() + ": tensor \"" + name + "\" has dtype " + info.dtype +
                              ", expected F32");
    }
    torch::Tensor t = torch::empty(info.shape, torch::kFloat32);
    std::memcpy(t.data_ptr(), file.data(name), info.end - info.begin);
    out[name] = t;
  }
  return out;
}

}  // namespace bert::train
