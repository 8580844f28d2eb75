// Our fused AdamW matches LibTorch's reference AdamW, and never decays biases or LayerNorm.
#include "train/optimizer.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace bert::train {
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
  AdamW restored(*ours, t);
  restored.load_state(state, "test");
  EXPECT_TRUE(torch::equal(restored.state().at("dense.weight.exp_avg_sq"), state.at("dense.weight.exp_avg_sq")));
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
    const double norm = global_grad_norm(a.parameters());
    const double torch_norm = torch::nn::utils::clip_grad_norm_(b.parameters(), 0.5);  // clips b's grads
    EXPECT_NEAR(norm, torch_norm, 1e-5 * torch_norm);
    const auto d = clip_divisor(norm, 0.5);
    ASSERT_TRUE(d.has_value());
    a.step(1e-2, torch::full({}, *d));
    b.step(1e-2);
    a.zero_grad();
    b.zero_grad();
  }
  for (size_t i = 0; i < ours->parameters().size(); ++i) {
    EXPECT_TRUE(torch::allclose(ours->parameters()[i], ref->parameters()[i], 1e-5, 1e-7)) << i;
  }
  EXPECT_FALSE(clip_divisor(0.4, 0.5).has_value());  // below the limit: no scaling
  EXPECT_FALSE(clip_divisor(5.0, 0.0).has_value());  // clipping off
  EXPECT_FALSE(clip_divisor(std::nan(""), 1.0).has_value());
  EXPECT_FALSE(clip_divisor(INFINITY, 1.0).has_value());
}

}  // namespace
}  // namespace bert::train
