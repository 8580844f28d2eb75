// Hash dropout: a custom autograd function around one parallel kernel, AVX-512 where the CPU has it.
#include "model/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <type_traits>

#include "model/simd.h"
#include "util/error.h"

namespace bert::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// splitmix64's output function: a bijective 64-bit mixer; (key + i * golden) is splitmix64's state
// sequence, so consecutive counters give independent-looking 64-bit words (two decisions each).
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kMix1 = 0xbf58476d1ce4e5b9ULL;
constexpr uint64_t kMix2 = 0x94d049bb133111ebULL;
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * kMix1;
  z = (z ^ (z >> 27)) * kMix2;
  return z ^ (z >> 31);
}

// The reference definition, over pair words [begin, end): the low half of word i decides element
// 2i, the high half element 2i + 1; an element is dropped when its half is below `threshold`.
// S is the arithmetic type (float for 16/32-bit elements, double for double).
template <typename T, typename S>
void mask_pairs_scalar(const T* in, T* out, int64_t n, int64_t begin, int64_t end, uint64_t key,
                       uint32_t threshold, S scale) {
  for (int64_t i = begin; i < end; ++i) {
    const uint64_t r = mix64(key + static_cast<uint64_t>(i) * kGolden);
    const int64_t j = 2 * i;
    out[j] = static_cast<uint32_t>(r) >= threshold ? static_cast<T>(static_cast<S>(in[j]) * scale)
                                                   : static_cast<T>(0);
    if (j + 1 < n) {
      out[j + 1] = static_cast<uint32_t>(r >> 32) >= threshold
                       ? static_cast<T>(static_cast<S>(in[j + 1]) * scale)
                       : static_cast<T>(0);
    }
  }
}

#ifdef BERT_HAVE_AVX512

// Keep bits of the 16 elements of pair words i .. i + 7, computed as mask_pairs_scalar does.
BERT_AVX512 inline __mmask16 keep16(uint64_t key, int64_t i, __m512i threshold) {
  const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  const auto base = static_cast<long long>(key + static_cast<uint64_t>(i) * kGolden);
  __m512i z = _mm512_add_epi64(_mm512_set1_epi64(base),
                               _mm512_mullo_epi64(lane, _mm512_set1_epi64(static_cast<long long>(kGolden))));
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)),
                         _mm512_set1_epi64(static_cast<long long>(kMix1)));
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)),
                         _mm512_set1_epi64(static_cast<long long>(kMix2)));
  z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
  // Little-endian: read as 16 x u32 the lanes are lo(w0), hi(w0), lo(w1), ... = elements 2i, 2i+1, ...
  return _mm512_cmpge_epu32_mask(z, threshold);
}

BERT_AVX512 void mask_pairs_vector(const float* in, float* out, int64_t begin, int64_t end, uint64_t key,
                                   uint32_t threshold, float scale) {
  const __m512i thr = _mm512_set1_epi32(static_cast<int>(threshold));
  const __m512 s = _mm512_set1_ps(scale);
  for (int64_t i = begin; i < end; i += 8) {
    const __mmask16 keep = keep16(key, i, thr);
    _mm512_storeu_ps(out + 2 * i, _mm512_maskz_mul_ps(keep, _mm512_loadu_ps(in + 2 * i), s));
  }
}

BERT_AVX512 void mask_pairs_vector(const c10::BFloat16* in, c10::BFloat16* out, int64_t begin, int64_t end,
                                   uint64_t key, uint32_t threshold, float scale) {
  const __m512i thr = _mm512_set1_epi32(static_cast<int>(threshold));
  const __m512 s = _mm512_set1_ps(scale);
  for (int64_t i = begin; i < end; i += 8) {
    const __mmask16 keep = keep16(key, i, thr);
    simd::store_bf16(out + 2 * i, _mm512_maskz_mul_ps(keep, simd::load_bf16(in + 2 * i), s));
  }
}
#endif

// Pair words [0, ceil(n / 2)) in parallel chunks; each chunk runs the vector kernel over its whole
// groups of 8 complete pairs and the scalar definition over the rest.
template <typename T, typename S>
void mask_kernel(const T* in, T* out, int64_t n, uint64_t key, uint32_t threshold, S scale, bool vector) {
  const int64_t pairs = (n + 1) / 2, full_pairs = n / 2;
  at::parallel_for(0, pairs, 8192, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
#ifdef BERT_HAVE_AVX512
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, c10::BFloat16>) {
      if (vector) {
        const int64_t groups = std::max<int64_t>(0, std::min(end, full_pairs) - begin) / 8;
        mask_pairs_vector(in, out, begin, begin + 8 * groups, key, threshold, scale);
        i = begin + 8 * groups;
      }
    }
#endif
    mask_pairs_scalar(in, out, n, i, end, key, threshold, scale);
  });
  (void)full_pairs;
  (void)vector;
}

uint32_t drop_threshold(double p) {
  return static_cast<uint32_t>(std::min(std::llround(p * 4294967296.0), 4294967295LL));
}

uint64_t draw_key() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
}

struct HashDropout : public torch::autograd::Function<HashDropout> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, double p, int64_t key) {
    ctx->saved_data["p"] = p;
    ctx->saved_data["key"] = key;
    return hash_dropout_apply(x, p, static_cast<uint64_t>(key));
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const double p = ctx->saved_data["p"].toDouble();
    const auto key = static_cast<uint64_t>(ctx->saved_data["key"].toInt());
    return {hash_dropout_apply(grads[0], p, key), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor hash_dropout_apply(const torch::Tensor& x, double p, uint64_t key, bool vector) {
#ifdef BERT_HAVE_AVX512
  vector = vector && simd::cpu_has_avx512();
#endif
  const auto in = x.contiguous();
  auto out = torch::empty_like(in, at::MemoryFormat::Contiguous);
  const int64_t n = in.numel();
  const uint32_t threshold = drop_threshold(p);
  const double scale = 1.0 / (1.0 - p);
  const auto fscale = static_cast<float>(scale);
  switch (in.scalar_type()) {
    case torch::kFloat32:
      mask_kernel(in.data_ptr<float>(), out.data_ptr<float>(), n, key, threshold, fscale, vector);
      break;
    case torch::kBFloat16:
      mask_kernel(in.data_ptr<c10::BFloat16>(), out.data_ptr<c10::BFloat16>(), n, key, threshold, fscale,
                  vector);
      break;
    case torch::kFloat16:
      mask_kernel(in.data_ptr<c10::Half>(), out.data_ptr<c10::Half>(), n, key, threshold, fscale, vector);
      break;
    case torch::kFloat64:  // keeps its precision: the gradient check runs in double
      mask_kernel(in.data_ptr<double>(), out.data_ptr<double>(), n, key, threshold, scale, vector);
      break;
    default:
      throw util::usage_error(std::string("dropout: unsupported dtype ") + c10::toString(in.scalar_type()));
  }
  return out;
}

torch::Tensor hash_dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0.0) return x;
  if (!x.is_cpu()) return torch::dropout(x, p, true);
  return HashDropout::apply(x, p, static_cast<int64_t>(draw_key()));
}

}  // namespace bert::model
