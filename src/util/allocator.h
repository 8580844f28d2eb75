// Process-wide tuning of glibc malloc for training: call first thing in main().
#pragma once

namespace bert::util {

// glibc serves every allocation above 32 MiB with a fresh mmap and unmaps it on free, so buffers
// of that size allocated every step (the MLM logits and their gradient, the [V, H] embedding
// gradient: 30-75 MB at V = 30,522) are page-faulted in anew each step: 8-11% of a bert-mini
// step on this CPU. This turns mmap off for malloc's main arena, where the training loop allocates
// (big blocks come from the heap and are reused; other threads' arenas still map blocks above 64 MiB)
// and keeps freed heap memory instead of trimming it. Peak RSS is unchanged; memory freed after the
// peak is not returned to the OS until exit. No-op where the C library is not glibc, or when the
// environment sets BERT_MALLOC=default.
void tune_allocator();

}  // namespace bert::util
