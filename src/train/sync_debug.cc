// SyncDebugScope: torch.cuda.set_sync_debug_mode for the lifetime of a scope.
#include "train/sync_debug.h"

#include "util/error.h"

#if defined(BERT_HAVE_CUDA_HEADERS)
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace bert::train {

SyncDebugScope::SyncDebugScope(const c10::Device& device, const std::string& mode) {
  if (mode == "off" || !device.is_cuda()) return;
#if defined(BERT_HAVE_CUDA_HEADERS)
  auto& state = c10::cuda::warning_state();
  previous_ = static_cast<int>(state.get_sync_debug_mode());
  state.set_sync_debug_mode(mode == "error" ? c10::cuda::SyncDebugMode::L_ERROR : c10::cuda::SyncDebugMode::L_WARN);
  active_ = true;
#else
  throw util::usage_error("runtime.cuda_sync_debug = \"" + mode + "\" needs a build with the CUDA headers; set it to \"off\"");
#endif
}

SyncDebugScope::~SyncDebugScope() {
#if defined(BERT_HAVE_CUDA_HEADERS)
  if (active_) c10::cuda::warning_state().set_sync_debug_mode(static_cast<c10::cuda::SyncDebugMode>(previous_));
#endif
}

}  // namespace bert::train
