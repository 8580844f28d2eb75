#include "util/allocator.h"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace bert::util {

void tune_allocator() {
#if defined(__GLIBC__)
  const char* choice = std::getenv("BERT_MALLOC");
  if (choice != nullptr && std::strcmp(choice, "default") == 0) return;
  mallopt(M_MMAP_MAX, 0);                      // no mmap-per-block: large blocks are reused
  mallopt(M_TRIM_THRESHOLD, 1 << 30);          // do not give the heap top back between steps
  mallopt(M_TOP_PAD, 64 << 20);                // grow the heap in 64 MiB strides
#endif
}

}  // namespace bert::util
