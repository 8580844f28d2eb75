// Attention: the unfused path against LibTorch's fused kernel (values and gradients), bf16, dropout.
#include "model/attention.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace bert::model {
namespace {

struct Qkv {
  torch::Tensor q, k, v, mask;
};
Qkv random_qkv(torch::ScalarType dtype) {
  torch::manual_seed(5);
  Qkv a;
  a.q = torch::randn({3, 2, 9, 8}).to(dtype).requires_grad_();
  a.k = torch::randn({3, 2, 9, 8}).to(dtype).requires_grad_();
  a.v = torch::randn({3, 2, 9, 8}).to(dtype).requires_grad_();
  a.mask = torch::ones({3, 1, 1, 9}, torch::kBool);
  a.mask.index_put_({1, 0, 0, torch::indexing::Slice(6)}, false);  // sequence 1 has 3 padding keys
  return a;
}

TEST(ModelAttention, UnfusedEqualsFusedKernelInFp32) {
  for (const bool with_mask : {false, true}) {
    auto a = random_qkv(torch::kFloat32);
    std::optional<torch::Tensor> mask;
    if (with_mask) mask = a.mask;
    const auto fused = at::scaled_dot_product_attention(a.q, a.k, a.v, mask, 0.0);
    const auto unfused = attention_unfused(a.q, a.k, a.v, mask, 0.0, true);
    EXPECT_LT((fused - unfused).abs().max().item<double>(), 1e-6);
    const auto g = torch::randn_like(fused);
    const auto grads_fused = torch::autograd::grad({fused}, {a.q, a.k, a.v}, {g});
    const auto grads_unfused = torch::autograd::grad({unfused}, {a.q, a.k, a.v}, {g});
    for (int i = 0; i < 3; ++i) EXPECT_LT((grads_fused[i] - grads_unfused[i]).abs().max().item<double>(), 1e-5);
  }
}

TEST(ModelAttention, Bf16RunsUnfusedInBf16AndStaysClose) {
  auto a = random_qkv(torch::kFloat32);
  const auto ref = at::scaled_dot_product_attention(a.q, a.k, a.v, a.mask, 0.0);
  auto b = random_qkv(torch::kBFloat16);
  const auto low = attention(b.q, b.k, b.v, b.mask, 0.1, false);  // eval: no dropout
  EXPECT_EQ(low.scalar_type(), torch::kBFloat16);
  EXPECT_LT((low.to(torch::kFloat32) - ref).abs().max().item<double>(), 0.05);
}

TEST(ModelAttention, DropoutOnProbabilitiesIsSeededAndTrainable) {
  auto a = random_qkv(torch::kFloat32);
  torch::manual_seed(9);
  const auto first = attention(a.q, a.k, a.v, a.mask, 0.5, true);
  torch::manual_seed(9);
  const auto again = attention(a.q, a.k, a.v, a.mask, 0.5, true);
  EXPECT_TRUE(torch::equal(first, again));
  const auto eval = attention(a.q, a.k, a.v, a.mask, 0.5, false);
  EXPECT_FALSE(torch::allclose(first, eval));
  first.sum().backward();
  EXPECT_TRUE(torch::isfinite(a.q.grad()).all().item<bool>());
  EXPECT_GT(a.v.grad().abs().sum().item<double>(), 0.0);
}

// The CUDA kernel switches (torch's global context) each backend name sets; what they select is
// checked on a GPU by scripts/gpu_check.sh. "flash" keeps memory-efficient on for padded batches.
TEST(ModelAttention, BackendNamesSetTheKernelSwitches) {
  auto& ctx = at::globalContext();
  struct Want {
    const char* name;
    bool flash, efficient, cudnn, math;
  };
  for (const Want& w : {Want{"auto", true, true, false, true}, Want{"flash", true, true, false, false},
                        Want{"efficient", false, true, false, false}, Want{"cudnn", false, false, true, false},
                        Want{"math", false, false, false, true}}) {
    set_attention_backend(w.name);
    EXPECT_EQ(ctx.userEnabledFlashSDP(), w.flash) << w.name;
    EXPECT_EQ(ctx.userEnabledMemEfficientSDP(), w.efficient) << w.name;
    EXPECT_EQ(ctx.userEnabledCuDNNSDP(), w.cudnn) << w.name;
    EXPECT_EQ(ctx.userEnabledMathSDP(), w.math) << w.name;
  }
  set_attention_backend("auto");
  EXPECT_THROW(set_attention_backend("fast"), util::Error);
}

}  // namespace
}  // namespace bert::model
