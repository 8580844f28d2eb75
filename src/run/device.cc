// Device resolution and the autocast RAII scope.
#include "run/device.h"

#include "model/attention.h"
#include "util/error.h"
#include "util/log.h"

namespace bert::run {

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

bool cpu_has_native_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
#else
  return false;  // (aarch64 bf16 detection is not wired up: fp32 is the safe choice)
#endif
}

std::string resolve_precision(const std::string& requested, const torch::Device& device, const std::string& key) {
  if (requested == "fp16" && !device.is_cuda()) {
    throw util::usage_error(key + " = \"fp16\" needs a CUDA device; on CPU use \"auto\", \"fp32\" or \"bf16\"");
  }
  if (requested == "auto") return device.is_cuda() || cpu_has_native_bf16() ? "bf16" : "fp32";
  if (requested == "bf16" && device.is_cpu() && !cpu_has_native_bf16()) {
    util::log_warn(key + " = \"bf16\" on a CPU without native bf16 (AVX512-BF16 or AMX): its matmuls run about "
                   "100x slower than fp32 here; use \"auto\" or \"fp32\"");
  }
  return requested;
}

void configure_cuda_math(bool tf32, const std::string& attention_backend) {
  model::set_attention_backend(attention_backend);
  auto& ctx = at::globalContext();
  const auto p = tf32 ? at::Float32Precision::TF32 : at::Float32Precision::IEEE;
  ctx.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL, p);
  ctx.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV, p);
}

std::string describe_attention(const torch::Device& device, const std::string& precision, int64_t batch,
                               int64_t seq, int64_t heads, int64_t head_dim, double dropout) {
  const auto dtype = precision == "bf16" ? torch::kBFloat16 : precision == "fp16" ? torch::kHalf : torch::kFloat32;
  torch::NoGradGuard no_grad;
  const auto q = torch::empty({batch, heads, seq, head_dim}, torch::TensorOptions().dtype(dtype).device(device));
  return "attention: " + model::attention_kernel_name(q, false, dropout, true) + " (no padding), " +
         model::attention_kernel_name(q, true, dropout, true) + " (padding)";
}

AutocastScope::AutocastScope(const torch::Device& device, const std::string& precision) {
  if (precision == "fp32") return;
  if (precision == "fp16" && !device.is_cuda()) {
    throw util::usage_error("precision fp16 needs a CUDA device; on CPU use bf16");
  }
  scope_.emplace(device.type(), precision == "fp16" ? at::kHalf : at::kBFloat16);
}

}  // namespace bert::run
