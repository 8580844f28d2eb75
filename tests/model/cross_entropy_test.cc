// Fused cross-entropy against LibTorch's cross_entropy (loss and gradient, every dtype, ignored
// rows, extreme logits), its vector exp against std::exp, errors and thread independence.
#include "model/cross_entropy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "model/simd.h"
#include "util/error.h"

namespace bert::model {
namespace {

namespace F = torch::nn::functional;

torch::Tensor reference_loss(const torch::Tensor& logits, const torch::Tensor& targets) {
  return F::cross_entropy(logits, targets, F::CrossEntropyFuncOptions().ignore_index(-100));
}

struct Case {
  torch::Tensor logits, targets;
};
// V = 1003: not a multiple of 16 (vector tail); rows 3 and 10 ignored; row 5 has extreme values;
// row 7 predicts its target with near certainty (its gradient there is a small difference).
Case make_case(torch::ScalarType dtype, double spread = 4.0) {
  torch::manual_seed(17);
  auto logits = (torch::randn({37, 1003}, torch::kFloat64) * spread);
  logits[5][0] = 80.0;
  logits[5][1] = -80.0;
  logits[5][2] = -std::numeric_limits<double>::infinity();
  auto targets = torch::randint(0, 1003, {37}, torch::kLong);
  targets[3] = -100;
  targets[10] = -100;
  targets[5] = 1;
  logits[7][targets[7].item<int64_t>()] = 20.0;  // a confident row: p_target ~ 1 - 1e-5
  return {logits.to(dtype), targets};
}

TEST(ModelCrossEntropy, MatchesTorchInFp32AndFp64) {
  for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
    const auto c = make_case(dtype);
    const auto a = c.logits.clone().requires_grad_();
    const auto b = c.logits.clone().requires_grad_();
    const auto ours = cross_entropy(a, c.targets);
    const auto ref = reference_loss(b, c.targets);
    EXPECT_EQ(ours.scalar_type(), dtype);
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 2e-6;
    EXPECT_NEAR(ours.item<double>(), ref.item<double>(), tol * std::abs(ref.item<double>()));
    ours.backward();
    ref.backward();
    // fp32: row 5's log-sum-exp is ~80, where one fp32 ulp is 7.6e-6; each implementation rounds it
    // to within half an ulp, so p (up to 1, times 1/35 rows) may differ by 2 * 3.8e-6 / 35 = 2.2e-7.
    EXPECT_LT((a.grad() - b.grad()).abs().max().item<double>(), dtype == torch::kFloat64 ? 1e-14 : 2.5e-7);
    EXPECT_TRUE(a.grad()[3].eq(0).all().item<bool>());  // ignored rows get no gradient
  }
}

TEST(ModelCrossEntropy, Bf16LogitsAreReadInFp32AndTheGradientIsBf16) {
  const auto c = make_case(torch::kBFloat16);
  const auto a = c.logits.clone().requires_grad_();
  const auto as_float = c.logits.to(torch::kFloat32).requires_grad_();
  const auto ours = cross_entropy(a, c.targets);
  const auto ref = reference_loss(as_float, c.targets);  // the same values, in fp32
  EXPECT_EQ(ours.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(ours.item<double>(), ref.item<double>(), 2e-6 * std::abs(ref.item<double>()));
  ours.backward();
  ref.backward();
  EXPECT_EQ(a.grad().scalar_type(), torch::kBFloat16);
  // One bf16 rounding of the fp32 gradient: relative 2^-8, also at the confident row's target.
  const auto diff = (a.grad().to(torch::kFloat32) - as_float.grad()).abs();
  EXPECT_TRUE((diff <= as_float.grad().abs() * (1.0 / 256) + 1e-12).all().item<bool>());
  const int64_t t7 = c.targets[7].item<int64_t>();
  EXPECT_NEAR(a.grad()[7][t7].item<double>(), as_float.grad()[7][t7].item<double>(),
              std::abs(as_float.grad()[7][t7].item<double>()) / 256);
}

TEST(ModelCrossEntropy, GradientScalesWithTheUpstreamGradient) {
  const auto c = make_case(torch::kFloat32);
  const auto a = c.logits.clone().requires_grad_();
  const auto b = c.logits.clone().requires_grad_();
  (cross_entropy(a, c.targets) * 3.5).backward();
  (reference_loss(b, c.targets) * 3.5).backward();
  EXPECT_LT((a.grad() - b.grad()).abs().max().item<double>(), 1e-6);
}

TEST(ModelCrossEntropy, AllIgnoredIsNanAndBadTargetsThrow) {
  const auto logits = torch::randn({4, 7});
  EXPECT_TRUE(std::isnan(cross_entropy(logits, torch::full({4}, -100, torch::kLong)).item<double>()));
  EXPECT_THROW(cross_entropy(logits, torch::tensor({0, 1, 7, 2}, torch::kLong)), util::Error);
  EXPECT_THROW(cross_entropy(logits, torch::tensor({0, -1, 3, 2}, torch::kLong)), util::Error);
  EXPECT_THROW(cross_entropy(logits, torch::tensor({0, 1, 2}, torch::kLong)), util::Error);
  auto nan_logits = logits.clone();
  nan_logits[2][5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(cross_entropy(nan_logits, torch::tensor({0, 1, 2, 3}, torch::kLong)).item<double>()));
  // The scalar path (fp64 here) agrees: NaN wins over -inf.
  auto odd = torch::full({1, 5}, -std::numeric_limits<double>::infinity(), torch::kFloat64);
  odd[0][3] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(std::isnan(cross_entropy(odd, torch::tensor({1}, torch::kLong)).item<double>()));
}

TEST(ModelCrossEntropy, SameBitsForAnyThreadCount) {
  const auto c = make_case(torch::kBFloat16);
  const int threads = torch::get_num_threads();
  auto run = [&](int n) {
    torch::set_num_threads(n);
    const auto a = c.logits.clone().requires_grad_();
    const auto loss = cross_entropy(a, c.targets);
    loss.backward();
    return std::make_pair(loss.item<float>(), a.grad());
  };
  const auto [loss1, grad1] = run(1);
  const auto [loss2, grad2] = run(2);
  torch::set_num_threads(threads);
  EXPECT_EQ(loss1, loss2);
  EXPECT_TRUE(torch::equal(grad1, grad2));
}

TEST(ModelCrossEntropy, VectorExpIsWithinAFewUlpOfStdExp) {
  if (!simd::cpu_has_avx512()) GTEST_SKIP() << "no AVX-512 here: exp_floats is std::exp";
  std::vector<float> in, out;
  for (float x = -110.0f; x <= 88.5f; x += 0.00731f) in.push_back(x);
  in.push_back(-std::numeric_limits<float>::infinity());
  in.push_back(std::numeric_limits<float>::quiet_NaN());
  in.push_back(0.0f);
  in.push_back(std::numeric_limits<float>::infinity());
  in.push_back(95.0f);
  out.resize(in.size());
  exp_floats(in.data(), out.data(), static_cast<int64_t>(in.size()));
  double worst = 0;
  for (size_t i = 0; i + 5 < in.size(); ++i) {
    const double want = std::exp(static_cast<double>(in[i]));
    if (want < 1e-37) {  // denormal range: absolute error
      EXPECT_LT(std::abs(out[i] - want), 1e-44) << in[i];
      continue;
    }
    worst = std::max(worst, std::abs(out[i] - want) / want);
  }
  EXPECT_LT(worst, 5e-7);  // ~4 ulp
  const size_t k = in.size() - 5;
  EXPECT_EQ(out[k], 0.0f);
  EXPECT_TRUE(std::isnan(out[k + 1]));
  EXPECT_EQ(out[k + 2], 1.0f);
  EXPECT_EQ(out[k + 3], std::numeric_limits<float>::infinity());
  EXPECT_EQ(out[k + 4], std::numeric_limits<float>::infinity());
}

}  // namespace
}  // namespace bert::model
