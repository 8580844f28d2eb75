// CUDA's synchronisation debug mode as an RAII scope: proves on a GPU that the training step never
// waits for the device. Its own file, compiled with the CUDA headers when the build has them.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace bert::train {

// While alive, a host-device synchronisation on `device` (CUDA) warns ("warn") or throws ("error"),
// as torch.cuda.set_sync_debug_mode: wrapped around the training step to prove it has none. "off"
// and CPU devices: nothing. "warn"/"error" on CUDA in a build without the CUDA headers: Error(kUsage).
class SyncDebugScope {
 public:
  SyncDebugScope(const c10::Device& device, const std::string& mode);
  ~SyncDebugScope();
  SyncDebugScope(const SyncDebugScope&) = delete;
  SyncDebugScope& operator=(const SyncDebugScope&) = delete;

 private:
  bool active_ = false;
  int previous_ = 0;
};

}  // namespace bert::train
