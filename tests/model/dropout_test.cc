// Hash dropout: the kernel against its written definition, statistics of the mask, the backward's
// mask, determinism.
#include "model/dropout.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/simd.h"

namespace bert::model {
namespace {

// The definition in dropout.h, written out independently of the kernel.
bool kept(uint64_t key, int64_t i, double p) {
  uint64_t z = key + static_cast<uint64_t>(i / 2) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  const auto half = static_cast<uint32_t>(i % 2 == 0 ? z : z >> 32);
  return half >= static_cast<uint32_t>(std::llround(p * 4294967296.0));
}

bool bitwise_equal(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() &&
         std::memcmp(a.data_ptr(), b.data_ptr(), a.numel() * a.element_size()) == 0;
}

TEST(ModelDropout, KernelFollowsItsDefinitionInEveryDtype) {
  // Odd sizes leave a half pair word and a vector tail; 100,003 spans several parallel chunks.
  torch::manual_seed(3);
  for (const int64_t n : {1, 2, 15, 17, 33, 100003}) {
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat64, torch::kFloat16}) {
      const auto x = torch::randn({n}, torch::TensorOptions().dtype(torch::kFloat64)).to(dtype);
      const auto out = hash_dropout_apply(x, 0.25, 12345 + n).to(torch::kFloat64);
      const auto xd = x.to(torch::kFloat64);
      const auto* o = out.data_ptr<double>();
      const auto* in = xd.data_ptr<double>();
      int64_t bad = 0;
      // Kept values are x * (1 / 0.75) rounded once to the dtype: relative error of its precision.
      // (fp16 also has subnormals below 6e-5: an absolute 1e-7 there.)
      const double tol = dtype == torch::kFloat64 ? 1e-15 : dtype == torch::kFloat32 ? 2e-7
                         : dtype == torch::kFloat16 ? 1e-3 : 8e-3;
      const double abs_tol = dtype == torch::kFloat16 ? 1e-7 : 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const double want = kept(12345 + n, i, 0.25) ? in[i] / 0.75 : 0.0;
        if (std::abs(o[i] - want) > tol * std::abs(want) + abs_tol) ++bad;
        if ((o[i] == 0.0) != (want == 0.0)) ++bad;
      }
      EXPECT_EQ(bad, 0) << "n " << n << " dtype " << dtype;
    }
  }
}

TEST(ModelDropout, VectorAndScalarKernelsGiveTheSameBits) {
  if (!simd::cpu_has_avx512()) GTEST_SKIP() << "no AVX-512 here: both calls run the scalar kernel";
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    auto x = torch::randn({1000003}).to(dtype);
    x[7] = std::numeric_limits<float>::quiet_NaN();
    x[8] = std::numeric_limits<float>::infinity();
    x[9] = 3.0e38f;  // overflows when scaled: inf in both
    for (const double p : {0.1, 0.5, 0.9}) {
      EXPECT_TRUE(bitwise_equal(hash_dropout_apply(x, p, 99, true), hash_dropout_apply(x, p, 99, false)))
          << dtype << " p " << p;
    }
  }
}

TEST(ModelDropout, BFloat16KeptValuesAreRoundedOnceFromFloat) {
  const auto x = torch::randn({4099}).to(torch::kBFloat16);
  const auto out = hash_dropout_apply(x, 0.1, 5);
  const auto* in = x.data_ptr<c10::BFloat16>();
  const auto* o = out.data_ptr<c10::BFloat16>();
  const float scale = static_cast<float>(1.0 / 0.9);
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (!kept(5, i, 0.1)) continue;
    ASSERT_EQ(o[i].x, c10::BFloat16(static_cast<float>(in[i]) * scale).x) << i;
  }
}

TEST(ModelDropout, DropRateAndPairIndependence) {
  const int64_t n = 4'000'000;
  const auto ones = torch::ones({n});
  for (const double p : {0.1, 0.5}) {
    const auto out = hash_dropout_apply(ones, p, 2024);
    const auto dropped = out.eq(0);
    const double rate = dropped.to(torch::kFloat64).mean().item<double>();
    const double sigma = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(rate, p, 5 * sigma) << "p " << p;
    // Kept values are exactly 1 / (1 - p) in fp32.
    EXPECT_TRUE(out.masked_select(dropped.logical_not()).eq(static_cast<float>(1.0 / (1.0 - p))).all().item<bool>());
    // The two halves of one hash word (elements 2k, 2k+1) and neighbouring words are independent.
    const auto pairs = dropped.view({n / 2, 2}).to(torch::kFloat64);
    const double both = (pairs.select(1, 0) * pairs.select(1, 1)).mean().item<double>();
    EXPECT_NEAR(both, p * p, 5 * std::sqrt(p * p * (1 - p * p) / (n / 2))) << "p " << p;
    const auto d = dropped.to(torch::kFloat64);
    const double next = (d.narrow(0, 0, n - 2) * d.narrow(0, 2, n - 2)).mean().item<double>();
    EXPECT_NEAR(next, p * p, 5 * std::sqrt(p * p * (1 - p * p) / n)) << "p " << p;
  }
}

TEST(ModelDropout, SameBitsForAnyThreadCount) {
  const auto x = torch::randn({300001});
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto one = hash_dropout_apply(x, 0.3, 77);
  torch::set_num_threads(2);
  const auto two = hash_dropout_apply(x, 0.3, 77);
  torch::set_num_threads(threads);
  EXPECT_TRUE(bitwise_equal(one, two));
}

TEST(ModelDropout, BackwardUsesTheForwardMaskAndTheSeedReproducesIt) {
  const auto x = torch::randn({37, 29}, torch::requires_grad());
  const auto w = torch::randn({37, 29});
  torch::manual_seed(11);
  const auto y = hash_dropout(x, 0.2, true);
  (y * w).sum().backward();
  const auto keep = y.detach().ne(0);
  const auto want = torch::where(keep, w / 0.8, torch::zeros_like(w));
  EXPECT_TRUE(torch::allclose(x.grad(), want, 1e-6, 1e-6));
  EXPECT_GT(keep.logical_not().sum().item<int64_t>(), int64_t{0});
  // Same generator state -> same mask; the next draw -> another mask.
  torch::manual_seed(11);
  EXPECT_TRUE(torch::equal(hash_dropout(x, 0.2, true), y));
  EXPECT_FALSE(torch::equal(hash_dropout(x, 0.2, true), y));
  // Eval and p = 0 leave x alone.
  EXPECT_TRUE(hash_dropout(x, 0.2, false).is_same(x));
  EXPECT_TRUE(hash_dropout(x, 0.0, true).is_same(x));
}

TEST(ModelDropout, NonContiguousInputIsMaskedInLogicalOrder) {
  const auto base = torch::randn({8, 6});
  const auto t = base.t();  // [6, 8], not contiguous
  EXPECT_TRUE(torch::equal(hash_dropout_apply(t, 0.5, 3), hash_dropout_apply(t.contiguous(), 0.5, 3)));
}

}  // namespace
}  // namespace bert::model
