// The training step: free of host-device synchronisation (checked on the CPU by watching every
// dispatched op for the ones that read a device value back), equal to the plain forward's loss,
// and skipping the update on the device for a non-finite loss.
#include "train/train_step.h"

#include <ATen/record_function.h>
#include <gtest/gtest.h>

#include <cmath>
#include <mutex>
#include <set>
#include <string>

#include "run/device.h"
#include "util/error.h"

namespace bert::train {
namespace {

model::BertConfig tiny_config() {
  model::BertConfig c;
  c.vocab_size = 31;
  c.hidden_size = 16;
  c.num_layers = 2;
  c.num_heads = 2;
  c.intermediate_size = 24;
  c.max_position_embeddings = 16;
  c.hidden_dropout = 0.1;
  c.attention_dropout = 0.1;
  return c;
}

// Two rows of 8: row 1 ends in 3 [PAD]s; 3 predicted positions; NSP labels 0 and 1 when `nsp`.
data::HostBatch host_batch(bool nsp, bool padding = true) {
  data::HostBatch h;
  h.batch_size = 2;
  h.seq_len = 8;
  for (int i = 0; i < 16; ++i) {
    const bool pad = padding && i >= 13;
    h.input_ids.push_back(pad ? 0 : 5 + (i * 7) % 20);
    h.token_type_ids.push_back(i % 8 >= 4 && !pad ? 1 : 0);
    h.attention_mask.push_back(pad ? 0 : 1);
    h.mlm_labels.push_back(i == 2 || i == 6 || i == 11 ? 7 + i : -100);
    h.num_real_tokens += pad ? 0 : 1;
  }
  h.num_predictions = 3;
  h.nsp_labels = nsp ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{-100, -100};
  return h;
}

// Records the name of every op dispatched while alive (all threads), except the ops that the CPU
// kernel of _fused_adamw_ runs inside itself: it reads each step count with .item() because that
// tensor lives on the host; the CUDA kernel reads it on the device (multi-tensor apply, no sync).
class OpRecorder {
 public:
  OpRecorder() {
    handle_ = at::addGlobalCallback(at::RecordFunctionCallback(
        [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
          if (inside_cpu_adamw() > 0) return nullptr;
          if (std::string(fn.name()) == "aten::_fused_adamw_") ++inside_cpu_adamw();
          std::lock_guard<std::mutex> lock(mutex());
          names().insert(fn.name());
          return nullptr;
        },
        [](const at::RecordFunction& fn, at::ObserverContext*) {
          if (std::string(fn.name()) == "aten::_fused_adamw_") --inside_cpu_adamw();
        }));
  }
  ~OpRecorder() { at::removeCallback(handle_); }
  static std::set<std::string> take() {
    std::lock_guard<std::mutex> lock(mutex());
    std::set<std::string> out;
    out.swap(names());
    return out;
  }

 private:
  static int& inside_cpu_adamw() {
    thread_local int depth = 0;
    return depth;
  }
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::set<std::string>& names() {
    static std::set<std::string> n;
    return n;
  }
  at::CallbackHandle handle_;
};

// The ops that wait for the device on CUDA: a scalar read, data-dependent shapes.
std::set<std::string> synchronising(const std::set<std::string>& ops) {
  static const std::set<std::string> kSync = {"aten::_local_scalar_dense", "aten::item", "aten::is_nonzero",
                                              "aten::nonzero", "aten::nonzero_static", "aten::masked_select",
                                              "aten::equal", "aten::allclose", "aten::_unique2",
                                              "aten::unique_consecutive", "aten::repeat_interleave"};
  std::set<std::string> out;
  for (const auto& op : ops) {
    if (kSync.count(op)) out.insert(op);
  }
  return out;
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += x + " ";
  return out;
}

struct Fixture {
  model::BertForPreTraining model{tiny_config(), 3};
  run::TrainingOptions options;
  run::AdamW optimizer{*model, options};
  run::LossScaler scaler{false, torch::kCPU};
};

TEST(TrainStep, MakesNoSynchronisingCall) {
  for (const std::string precision : {"fp32", "bf16"}) {
    for (bool nsp : {false, true}) {
      Fixture f;
      std::vector<data::Batch> batches = {data::to_device(host_batch(nsp), torch::kCPU),
                                          data::to_device(host_batch(nsp, false), torch::kCPU)};
      OpRecorder::take();
      {
        OpRecorder recorder;
        torch::manual_seed(1);
        const StepResult r = train_step(f.model, f.optimizer, f.scaler, batches, 1e-3, {precision, 1.0});
      }
      const auto ops = OpRecorder::take();
      ASSERT_GT(ops.size(), 20u) << "the recorder saw no ops: it would miss a sync too";
      EXPECT_TRUE(ops.count("aten::_fused_adamw_")) << join(ops);
      EXPECT_TRUE(synchronising(ops).empty()) << precision << " nsp=" << nsp << ": " << join(synchronising(ops));
    }
  }
}

TEST(TrainStep, TheRecorderSeesTheSyncsOfTheDerivingForward) {
  // The guard above can fail: the forward without host facts derives them with nonzero/.item().
  Fixture f;
  const data::Batch b = data::to_device(host_batch(true), torch::kCPU);
  OpRecorder::take();
  {
    OpRecorder recorder;
    f.model->forward(b.input_ids, b.token_type_ids, b.attention_mask, b.mlm_labels, b.nsp_labels);
  }
  const auto sync = synchronising(OpRecorder::take());
  EXPECT_TRUE(sync.count("aten::nonzero")) << join(sync);
  EXPECT_TRUE(sync.count("aten::_local_scalar_dense")) << join(sync);
}

TEST(TrainStep, HostFactsGiveTheSameForwardAsDerivingThem) {
  for (bool nsp : {false, true}) {
    for (bool padding : {false, true}) {
      model::BertForPreTraining m(tiny_config(), 4);
      m->eval();
      const data::Batch b = data::to_device(host_batch(nsp, padding), torch::kCPU);
      EXPECT_EQ(b.has_padding, padding);
      EXPECT_EQ(b.has_nsp, nsp);
      EXPECT_EQ(b.mlm_positions.numel(), 3);
      EXPECT_EQ(b.mlm_positions[2].item<int64_t>(), 11);
      const auto derived = m->forward(b.input_ids, b.token_type_ids, b.attention_mask, b.mlm_labels, b.nsp_labels);
      const auto given = m->forward(run::model_inputs(b));
      EXPECT_TRUE(torch::equal(derived.loss, given.loss));
      EXPECT_TRUE(torch::equal(derived.mlm_logits, given.mlm_logits));
      EXPECT_EQ(given.nsp_loss.defined(), nsp);
    }
  }
}

TEST(TrainStep, ReportsTheLossAndUpdates) {
  Fixture f;
  f.model->eval();  // no dropout: the step's loss is the plain forward's
  const std::vector<data::Batch> batches = {data::to_device(host_batch(true), torch::kCPU)};
  const double expected = f.model->forward(run::model_inputs(batches[0])).loss.item<double>();
  const auto before = f.model->named_parameters()["bert.embeddings.word_embeddings.weight"].clone();
  const StepResult r = train_step(f.model, f.optimizer, f.scaler, batches, 1e-2, {"fp32", 1.0});
  EXPECT_NEAR(r.loss.item<double>(), expected, 1e-6);
  EXPECT_GT(r.nsp_loss.item<double>(), 0.0);
  EXPECT_EQ(r.skipped.item<float>(), 0.0f);
  EXPECT_GT(r.grad_norm.item<double>(), 0.0);
  EXPECT_GE(r.correct.item<int64_t>(), 0);
  EXPECT_LE(r.correct.item<int64_t>(), 3);
  EXPECT_FALSE(torch::equal(before, f.model->named_parameters()["bert.embeddings.word_embeddings.weight"]));
  EXPECT_FLOAT_EQ(f.optimizer.state().at("bert.embeddings.word_embeddings.weight.step").item<float>(), 1.0f);
}

TEST(TrainStep, NonFiniteLossSkipsTheUpdateOnTheDevice) {
  Fixture f;
  {
    torch::NoGradGuard g;
    f.model->named_parameters()["bert.embeddings.LayerNorm.weight"].fill_(NAN);
  }
  const auto before = f.model->named_parameters()["cls.predictions.bias"].clone();
  const std::vector<data::Batch> batches = {data::to_device(host_batch(false), torch::kCPU)};
  const StepResult r = train_step(f.model, f.optimizer, f.scaler, batches, 1e-2, {"fp32", 1.0});
  EXPECT_TRUE(std::isnan(r.loss.item<double>()));
  EXPECT_EQ(r.nonfinite.item<float>(), 1.0f);
  EXPECT_EQ(r.skipped.item<float>(), 1.0f);
  EXPECT_TRUE(torch::equal(before, f.model->named_parameters()["cls.predictions.bias"]));
  const auto state = f.optimizer.state();
  EXPECT_EQ(state.at("cls.predictions.bias.step").item<float>(), 0.0f);  // bias correction not advanced
  EXPECT_EQ(state.at("cls.predictions.bias.exp_avg").abs().sum().item<float>(), 0.0f);
}

TEST(TrainStep, AttentionKernelNamesOnTheCpu) {
  EXPECT_EQ(run::describe_attention(torch::kCPU, "fp32", 2, 8, 2, 4, 0.0), "attention: cpu-fused (no padding), cpu-fused (padding)");
  EXPECT_EQ(run::describe_attention(torch::kCPU, "bf16", 2, 8, 2, 4, 0.0), "attention: cpu-unfused (no padding), cpu-unfused (padding)");
  EXPECT_EQ(run::describe_attention(torch::kCPU, "fp32", 2, 8, 2, 4, 0.1), "attention: cpu-unfused (no padding), cpu-unfused (padding)");
  EXPECT_THROW(run::configure_cuda_math(true, "fastest"), util::Error);
  EXPECT_NO_THROW(run::configure_cuda_math(true, "auto"));
}

TEST(Precision, AutoIsBf16OnlyWhereTheCpuHasIt) {
  const std::string cpu_auto = run::resolve_precision("auto", torch::kCPU, "run.json: training.precision");
  EXPECT_EQ(cpu_auto, run::cpu_has_native_bf16() ? "bf16" : "fp32");
#if defined(__x86_64__)
  EXPECT_EQ(run::cpu_has_native_bf16(), __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16"));
#endif
  EXPECT_EQ(run::resolve_precision("auto", torch::Device(torch::kCUDA, 0), "k"), "bf16");
  EXPECT_EQ(run::resolve_precision("bf16", torch::kCPU, "k"), "bf16");  // asked for: kept (with a warning here)
  EXPECT_EQ(run::resolve_precision("fp32", torch::kCPU, "k"), "fp32");
  try {
    run::resolve_precision("fp16", torch::kCPU, "run.json: training.precision");
    ADD_FAILURE() << "fp16 on the CPU was accepted";
  } catch (const util::Error& e) {
    EXPECT_EQ(e.kind(), util::ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("run.json: training.precision"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bert::train
