// Saving a checkpoint as an atomic, verified directory; loading one back.
#include "train/checkpoint.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#include "model/weights.h"
#include "train/tensor_file.h"
#include "util/atomic_file.h"

namespace bert::train {
namespace fs = std::filesystem;

namespace {

// Test-only: BERT_TEST_SAVE_DELAY_MS=N sleeps N ms between the stages of a save, so that the kill
// soak (scripts/soak_kill.sh) lands many of its kills inside checkpoint writes. Unset: no effect.
void test_save_delay() {
  static const int ms = [] {
    const char* v = std::getenv("BERT_TEST_SAVE_DELAY_MS");
    return v != nullptr ? std::atoi(v) : 0;
  }();
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace

fs::path save_checkpoint(const fs::path& run_dir, model::BertForPreTraining& model,
                         const wordpiece::Vocab& vocab, const CheckpointContents& contents) {
  fs::path final_dir = run_dir / run::checkpoint_name(contents.step);
  util::AtomicDir dir(final_dir);
  const fs::path& tmp = dir.tmp_path();
  model::save_weights(model, tmp / "model.safetensors");
  test_save_delay();
  nlohmann::json hf = model->config().to_hf_json();
  util::write_file_atomic(tmp / "config.json", hf.dump(2) + "\n");
  vocab.save(tmp);
  test_save_delay();
  save_tensor_file(contents.optimizer_state, tmp / "optimizer.safetensors");
  test_save_delay();
  nlohmann::json state = contents.trainer_state;
  state["format_version"] = run::kCheckpointFormatVersion;
  state["step"] = contents.step;
  util::write_file_atomic(tmp / "trainer_state.json", state.dump(2) + "\n");

  test_save_delay();
  run::write_manifest(tmp);
  test_save_delay();
  dir.commit();
  test_save_delay();
  util::write_file_atomic(run_dir / "latest", final_dir.filename().string() + "\n");
  return final_dir;
}

CheckpointContents load_checkpoint(const fs::path& dir, model::BertForPreTraining& model) {
  CheckpointContents c;
  c.trainer_state = run::read_trainer_state(dir, &c.step);
  model::load_weights(model, dir / "model.safetensors");
  c.optimizer_state = load_tensor_file(dir / "optimizer.safetensors");
  return c;
}

}  // namespace bert::train
