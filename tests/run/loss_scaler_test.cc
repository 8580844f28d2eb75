// fp16 loss scaling on CPU tensors (the same ATen kernels run on CUDA): scaling, overflow
// detection, halving and growth, and the checkpointed state.
#include "run/loss_scaler.h"

#include <gtest/gtest.h>

#include <limits>

#include "util/error.h"

namespace bert::run {
namespace {

std::vector<torch::Tensor> params_with_grads(float g0, float g1) {
  auto a = torch::zeros({2}, torch::requires_grad());
  auto b = torch::zeros({1}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({g0, 2.0f});
  b.mutable_grad() = torch::tensor({g1});
  return {a, b};
}

TEST(TrainLossScaler, DisabledIsTheIdentity) {
  LossScaler s(false, torch::kCPU);
  const auto loss = torch::tensor(3.0f);
  EXPECT_TRUE(s.apply(loss).is_same(loss));
  EXPECT_TRUE(s.state().is_null());
  EXPECT_FALSE(s.overflowed());
  EXPECT_EQ(s.scale(), 1.0);
  s.restore({{"scale", 8.0}, {"growth_tracker", 1}}, "x");  // ignored
  EXPECT_EQ(s.scale(), 1.0);
}

TEST(TrainLossScaler, UnscalesSkipsOnOverflowHalvesAndGrows) {
  LossScaler s(true, torch::kCPU, 1024.0, /*growth_interval=*/3);
  EXPECT_FLOAT_EQ(s.apply(torch::tensor(0.5f)).item<float>(), 512.0f);
  auto clean = params_with_grads(1024.0f, 4096.0f);
  s.unscale(clean);
  EXPECT_FALSE(s.overflowed());
  EXPECT_FLOAT_EQ(clean[0].grad()[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(clean[1].grad()[0].item<float>(), 4.0f);
  s.update();
  EXPECT_EQ(s.scale(), 1024.0);
  EXPECT_EQ(s.state()["growth_tracker"], 1);

  auto bad = params_with_grads(std::numeric_limits<float>::infinity(), 1.0f);
  s.unscale(bad);
  EXPECT_TRUE(s.overflowed());
  s.update();
  EXPECT_EQ(s.scale(), 512.0);
  EXPECT_EQ(s.state()["growth_tracker"], 0);

  for (int i = 0; i < 3; ++i) {
    auto g = params_with_grads(1.0f, 1.0f);
    s.unscale(g);
    s.update();
  }
  EXPECT_EQ(s.scale(), 1024.0);  // doubled after 3 clean steps
}

TEST(TrainLossScaler, StateRoundTripContinuesIdentically) {
  LossScaler a(true, torch::kCPU, 65536.0, 4);
  auto nan = params_with_grads(std::numeric_limits<float>::quiet_NaN(), 1.0f);
  a.unscale(nan);
  a.update();
  for (int i = 0; i < 2; ++i) {
    auto g = params_with_grads(1.0f, 1.0f);
    a.unscale(g);
    a.update();
  }
  const nlohmann::json saved = nlohmann::json::parse(a.state().dump());  // through text, as on disk
  EXPECT_EQ(saved["scale"], 32768.0);
  EXPECT_EQ(saved["growth_tracker"], 2);
  LossScaler b(true, torch::kCPU, 65536.0, 4);
  b.restore(saved, "ckpt/trainer_state.json");
  for (int i = 0; i < 2; ++i) {
    auto ga = params_with_grads(1.0f, 1.0f), gb = params_with_grads(1.0f, 1.0f);
    a.unscale(ga);
    a.update();
    b.unscale(gb);
    b.update();
    EXPECT_EQ(a.state(), b.state());
  }
  EXPECT_EQ(b.scale(), 65536.0);  // grew at the 4th clean step, as the uninterrupted one did
}

TEST(TrainLossScaler, DamagedStateIsAnInputErrorNamingTheFile) {
  LossScaler s(true, torch::kCPU);
  for (const auto& bad : {nlohmann::json{{"scale", -1.0}, {"growth_tracker", 0}},
                          nlohmann::json{{"scale", "big"}, {"growth_tracker", 0}},
                          nlohmann::json{{"scale", 8.0}, {"growth_tracker", -2}},
                          nlohmann::json{{"scale", 1e39}, {"growth_tracker", 0}},  // inf in fp32
                          nlohmann::json{{"scale", 8.0}, {"growth_tracker", 2000}},  // would never grow
                          nlohmann::json{{"scale", 8.0}}, nlohmann::json::array()}) {
    try {
      s.restore(bad, "run/step-10/trainer_state.json");
      ADD_FAILURE() << "accepted " << bad.dump();
    } catch (const util::Error& e) {
      EXPECT_EQ(e.kind(), util::ErrorKind::kInput);
      EXPECT_NE(std::string(e.what()).find("run/step-10/trainer_state.json: loss_scaler."), std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(s.scale(), 65536.0);  // unchanged by the failed restores
}

}  // namespace
}  // namespace bert::run
