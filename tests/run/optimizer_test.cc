// Our fused AdamW matches LibTorch's reference AdamW, and never decays biases or LayerNorm.
#include "run/optimizer.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace bert::run {
namespace {

struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    dense = register_module("dense", torch::nn::Linear(4, 3));
    norm = register_module("LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({3})));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm(dense(x)); }
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(Tiny);

// Copies `from`'s parameters into `to`: two identical models to step side by side.
void copy_parameters(Tiny& from, Tiny& to) {
  torch::NoGradGuard guard;
  for (size_t i = 0; i < from->parameters().size(); ++i) to->parameters()[i].copy_(from->parameters()[i]);
}

TEST(AdamW, MatchesReferenceWithDecayGroups) {
  torch::manual_seed(0);
  Tiny ours, ref;
  copy_parameters(ours, ref);
  torch::NoGradGuard guard;
  TrainingOptions t;
  t.weight_decay = 0.1;
  t.adam_betas = {0.9, 0.98};
  t.adam_eps = 1e-6;
  AdamW opt(*ours, t);
  auto wd = torch::optim::AdamWOptions(0.01).betas({0.9, 0.98}).eps(1e-6);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{ref->dense->weight},
                      std::make_unique<torch::optim::AdamWOptions>(wd.weight_decay(0.1)));
  groups.emplace_back(std::vector<torch::Tensor>{ref->dense->bias, ref->norm->weight, ref->norm->bias},
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(0.01).betas({0.9, 0.98}).eps(1e-6).weight_decay(0.0)));
  torch::optim::AdamW reference(std::move(groups));
  for (int step = 0; step < 5; ++step) {
    torch::Tensor x = torch::randn({8, 4});
    for (auto* m : {&ours, &ref}) {
      torch::AutoGradMode enable(true);
      (*m)->forward(x).pow(2).sum().backward();
    }
    opt.step(0.01);
    reference.step();
    opt.zero_grad();
    reference.zero_grad();
  }
  for (size_t i = 0; i < ours->parameters().size(); ++i) {
    EXPECT_TRUE(torch::allclose(ours->parameters()[i], ref->parameters()[i], 1e-6, 1e-7)) << i;
  }
  // State round trip: names, then a restored optimizer continues identically.
  auto state = opt.state();
  EXPECT_EQ(state.size(), 12u);
  EXPECT_TRUE(state.count("dense.weight.exp_avg"));
  EXPECT_FLOAT_EQ(state.at("LayerNorm.bias.step").item<float>(), 5.0f);
  // A twin model with a restored optimizer continues exactly as the original: step both once more.
  Tiny twin;
  copy_parameters(ours, twin);
  AdamW restored(*twin, t);
  restored.load_state(state, "test");
  EXPECT_TRUE(torch::equal(restored.state().at("dense.weight.exp_avg_sq"), state.at("dense.weight.exp_avg_sq")));
  {
    torch::AutoGradMode enable(true);
    const torch::Tensor x = torch::randn({8, 4});
    ours->forward(x).pow(2).sum().backward();
    twin->forward(x).pow(2).sum().backward();
  }
  opt.step(0.01);
  restored.step(0.01);
  for (size_t i = 0; i < ours->parameters().size(); ++i) {
    EXPECT_TRUE(torch::equal(ours->parameters()[i], twin->parameters()[i])) << i;
  }
  for (const auto& [key, value] : opt.state()) EXPECT_TRUE(torch::equal(value, restored.state().at(key))) << key;
  state.erase("dense.bias.step");
  EXPECT_THROW(restored.load_state(state, "test"), util::Error);
}

TEST(AdamW, ClippingFoldedIntoTheStepEqualsClipGradNorm) {
  torch::manual_seed(1);
  Tiny ours, ref;
  copy_parameters(ours, ref);
  TrainingOptions t;
  t.weight_decay = 0.01;
  AdamW a(*ours, t), b(*ref, t);
  for (int step = 0; step < 4; ++step) {
    const torch::Tensor x = torch::randn({8, 4}) * 10;  // large gradients: clipping is active
    for (auto* m : {&ours, &ref}) (*m)->forward(x).pow(2).sum().backward();
    const torch::Tensor norm = global_grad_norm(a.parameters());
    const double torch_norm = torch::nn::utils::clip_grad_norm_(b.parameters(), 0.5);  // clips b's grads
    EXPECT_NEAR(norm.item<double>(), torch_norm, 1e-5 * torch_norm);
    const torch::Tensor d = clip_divisor(norm, 0.5);
    ASSERT_TRUE(d.defined());
    EXPECT_GT(d.item<float>(), 1.0f);
    a.step(1e-2, d);
    b.step(1e-2);
    a.zero_grad();
    b.zero_grad();
  }
  for (size_t i = 0; i < ours->parameters().size(); ++i) {
    EXPECT_TRUE(torch::allclose(ours->parameters()[i], ref->parameters()[i], 1e-5, 1e-7)) << i;
  }
  const auto scalar = [](double v) { return torch::full({}, v, torch::kFloat32); };
  EXPECT_EQ(clip_divisor(scalar(0.4), 0.5).item<float>(), 1.0f);  // below the limit: an exact no-op divisor
  EXPECT_FLOAT_EQ(clip_divisor(scalar(2.0), 0.5).item<float>(), static_cast<float>((2.0 + 1e-6) / 0.5));
  EXPECT_FALSE(clip_divisor(scalar(5.0), 0.0).defined());  // clipping off
  EXPECT_EQ(clip_divisor(scalar(std::nan("")), 1.0).item<float>(), 1.0f);
  EXPECT_EQ(clip_divisor(scalar(INFINITY), 1.0).item<float>(), 1.0f);
}

TEST(AdamW, FoundInfSkipsTheUpdateAndTheStepCount) {
  torch::manual_seed(2);
  Tiny ours, ref;
  copy_parameters(ours, ref);
  TrainingOptions t;
  AdamW a(*ours, t), b(*ref, t);
  const auto skip = torch::ones({}, torch::kFloat32), go = torch::zeros({}, torch::kFloat32);
  for (int step = 0; step < 3; ++step) {
    const torch::Tensor x = torch::randn({8, 4});
    for (auto* m : {&ours, &ref}) (*m)->forward(x).pow(2).sum().backward();
    a.step(1e-2, std::nullopt, go);
    b.step(1e-2);
    if (step == 1) {  // a skipped step in between changes nothing, the step count included
      const auto params = ours->parameters()[0].clone();
      const auto state = a.state();
      a.step(1e-2, std::nullopt, skip);
      EXPECT_TRUE(torch::equal(params, ours->parameters()[0]));
      for (const auto& [key, value] : a.state()) EXPECT_TRUE(torch::equal(value, state.at(key))) << key;
    }
    a.zero_grad();
    b.zero_grad();
  }
  for (size_t i = 0; i < ours->parameters().size(); ++i) {
    EXPECT_TRUE(torch::equal(ours->parameters()[i], ref->parameters()[i])) << i;
  }
  EXPECT_FLOAT_EQ(a.state().at("dense.weight.step").item<float>(), 3.0f);
}

}  // namespace
}  // namespace bert::run
