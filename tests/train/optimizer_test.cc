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

TEST(AdamW, MatchesReferenceWithDecayGroups) {
  torch::manual_seed(0);
  Tiny ours, ref;
  torch::NoGradGuard guard;
  for (size_t i = 0; i < ours->parameters().size(); ++i) ref->parameters()[i].copy_(ours->parameters()[i]);
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

}  // namespace
}  // namespace bert::train
