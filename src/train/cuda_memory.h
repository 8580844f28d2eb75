// The CUDA caching allocator's peak of allocated bytes (torch.cuda.max_memory_allocated): what the
// tensors took, without the CUDA context and the allocator's reserve that nvidia-smi also counts.
#pragma once

#include <c10/core/Device.h>

namespace bert::train {

// Peak allocated bytes on `device` since the process started, in GiB; -1 on the CPU or in a build
// without the CUDA headers.
double cuda_peak_allocated_gib(const c10::Device& device);

}  // namespace bert::train
