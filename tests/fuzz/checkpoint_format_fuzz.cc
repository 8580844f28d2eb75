// Fuzzes the readers of a checkpoint dir that never touch torch (run/checkpoint_format):
// verify_checkpoint (manifest.json: file names, sizes, crc32s), read_trainer_state
// (trainer_state.json) and find_latest_checkpoint (the run's `latest` pointer, then step-* dirs).
// Input: the bytes of manifest.json, then optionally the line "--trainer_state.json--" and that
// file's bytes, then optionally the line "--latest--" and the pointer's bytes. The other files of the
// checkpoint (model.safetensors, config.json, ...) are fixed (fuzz_util.h).
// Invariants: verify_checkpoint never throws (a bad manifest is a reason, not an exception); a
// checkpoint it accepts has every file its manifest lists; read_trainer_state either throws
// util::Error or returns an object whose "step" is the step it reports, >= 0; find_latest_checkpoint
// returns only a checkpoint that verifies.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "run/checkpoint_format.h"
#include "util/error.h"

namespace {
constexpr std::string_view kStateMarker = "\n--trainer_state.json--\n";
constexpr std::string_view kLatestMarker = "\n--latest--\n";
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bert::fuzz::quiet_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view latest;
  bool has_latest = false;
  if (const size_t at = input.find(kLatestMarker); at != std::string_view::npos) {
    latest = input.substr(at + kLatestMarker.size());
    input = input.substr(0, at);
    has_latest = true;
  }
  std::string_view state;
  bool has_state = false;
  if (const size_t at = input.find(kStateMarker); at != std::string_view::npos) {
    state = input.substr(at + kStateMarker.size());
    input = input.substr(0, at);
    has_state = true;
  }

  const fs::path run = bert::fuzz::scratch_dir() / "run";
  const fs::path ckpt = run / "step-0000001";
  std::error_code ec;
  fs::remove_all(run, ec);
  bert::fuzz::write_checkpoint_fixture(ckpt);
  bert::fuzz::write_scratch("run/step-0000001/manifest.json", input);
  if (has_state) bert::fuzz::write_scratch("run/step-0000001/trainer_state.json", state);
  if (has_latest) bert::fuzz::write_scratch("run/latest", latest);

  const std::string why = bert::run::verify_checkpoint(ckpt);
  if (why.empty()) {
    for (const char* f : {"model.safetensors", "config.json", "vocab.txt", "trainer_state.json", "optimizer.safetensors"}) {
      BERT_FUZZ_CHECK(fs::is_regular_file(ckpt / f));
    }
  }

  try {
    int64_t step = -1;
    const nlohmann::json s = bert::run::read_trainer_state(ckpt, &step);
    BERT_FUZZ_CHECK(s.is_object() && step >= 0);
    BERT_FUZZ_CHECK(s.at("step").is_number_integer() && s.at("step").get<int64_t>() == step);
    BERT_FUZZ_CHECK(s.at("format_version") == bert::run::kCheckpointFormatVersion);
  } catch (const bert::util::Error&) {
  }

  try {
    const auto found = bert::run::find_latest_checkpoint(run);
    if (found) BERT_FUZZ_CHECK(bert::run::verify_checkpoint(*found).empty());
  } catch (const bert::util::Error&) {
  }
  return 0;
}
