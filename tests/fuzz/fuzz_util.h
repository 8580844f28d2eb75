// Shared pieces of the libFuzzer harnesses: a scratch directory for readers that take a path, the
// invariant check that turns a wrong answer into a crash libFuzzer records, and quiet logging.
//
// The contract every harness keeps: bert::util::Error is the expected outcome of bad input and is
// caught; anything else escaping (another exception type), a crash, a sanitizer report, a leak or a
// timeout is a bug.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>

#include "util/log.h"

namespace bert::fuzz {

// Aborts (a crash libFuzzer saves as crash-*) when an invariant of the code under test breaks.
#define BERT_FUZZ_CHECK(cond)                                                              \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "invariant broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

// One scratch directory per process, in /dev/shm when it exists (no disk traffic per input),
// removed at exit. Files in it are overwritten by each input.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    std::filesystem::path d = base / ("bert-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec2;
      std::filesystem::remove_all(scratch_dir(), ec2);
    });
    return d;
  }();
  return dir;
}

// Writes `bytes` to scratch_dir()/name and returns the path.
inline std::filesystem::path write_scratch(const std::string& name, std::string_view bytes) {
  std::filesystem::path p = scratch_dir() / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  BERT_FUZZ_CHECK(out.good());
  return p;
}

// The files of a checkpoint dir that checkpoint_format_fuzz does not fuzz (it fuzzes manifest.json,
// trainer_state.json and the run's `latest` pointer); make_fuzz_seeds writes the same ones, so the
// seed manifests list their true sizes and crc32s.
inline void write_checkpoint_fixture(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const std::pair<const char*, std::string_view> files[] = {
      {"model.safetensors", std::string_view("\x10\0\0\0\0\0\0\0{}              ", 24)},
      {"optimizer.safetensors", ""},
      {"config.json", "{\"model_type\": \"bert\"}\n"},
      {"vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nżółć\n"}};
  for (const auto& [name, bytes] : files) {
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
}

// Warnings (e.g. skipped corpus lines) would flood the fuzzer's output; errors only.
inline void quiet_logging() { util::init_logging(util::LogLevel::kError); }

}  // namespace bert::fuzz
