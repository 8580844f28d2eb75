// Device resolution and the autocast RAII scope.
#include "train/device.h"

#include "util/error.h"

namespace bert::train {

torch::Device resolve_device(const std::string& name) {
  const bool has_cuda = torch::cuda::is_available();
  if (name == "auto") return has_cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!has_cuda) {
      throw util::usage_error("device \"" + name + "\" requested but no CUDA GPU is visible to this process "
                              "(torch::cuda::is_available() is false); use runtime.device = \"cpu\" or \"auto\"");
    }
    int index = name.size() > 5 ? std::stoi(name.substr(5)) : 0;
    int count = static_cast<int>(torch::cuda::device_count());
    if (index >= count) {
      throw util::usage_error("device \"" + name + "\" requested but only " + std::to_string(count) +
                              " CUDA device(s) are visible (cuda:0..cuda:" + std::to_string(count - 1) + ")");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw util::usage_error("unknown device \"" + name + "\"; use auto, cpu, cuda or cuda:N");
}

std::string describe_device(const torch::Device& device) {
  if (device.is_cpu()) return "cpu (" + std::to_string(at::get_num_threads()) + " threads)";
  return device.str();
}

AutocastScope::AutocastScope(const torch::Device& device, const std::string& precision) {
  if (precision == "fp32") return;
  if (precision == "fp16" && !device.is_cuda()) {
    throw util::usage_error("precision fp16 needs a CUDA device; on CPU use bf16");
  }
  scope_.emplace(device.type(), precision == "fp16" ? at::kHalf : at::kBFloat16);
}

}  // namespace bert::train
