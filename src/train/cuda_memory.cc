#include "train/cuda_memory.h"

#if defined(BERT_HAVE_CUDA_HEADERS)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace bert::train {

double cuda_peak_allocated_gib(const c10::Device& device) {
  if (!device.is_cuda()) return -1;
#if defined(BERT_HAVE_CUDA_HEADERS)
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
  const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
  return static_cast<double>(stats.allocated_bytes[aggregate].peak) / (1024.0 * 1024.0 * 1024.0);
#else
  return -1;
#endif
}

}  // namespace bert::train
