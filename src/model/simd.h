// AVX-512 helpers for the model's hand-written CPU kernels (dropout, cross-entropy), internal to
// the model layer. The binaries target baseline x86-64; these functions are compiled for AVX-512
// with a target attribute and called only when cpu_has_avx512() says so at run time. Each kernel
// keeps a scalar version that defines the result, so another CPU computes the same bits (dropout)
// or the same values to float rounding (exp).
#pragma once

#include <c10/util/BFloat16.h>

#include <cstdint>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BERT_HAVE_AVX512 1
#define BERT_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
#endif

namespace bert::model::simd {

#ifdef BERT_HAVE_AVX512

inline bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return has;
}

// 16 floats from 16 bf16 (exact: bf16 is the top half of a float).
BERT_AVX512 inline __m512 load_bf16(const c10::BFloat16* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

// 16 floats to bf16 rounding to nearest even, NaN -> 0x7fc0: c10::BFloat16(float)'s conversion.
BERT_AVX512 inline void store_bf16(c10::BFloat16* p, __m512 y) {
  const __m512i u = _mm512_castps_si512(y);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
  r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(y, y, _CMP_UNORD_Q), _mm512_set1_epi32(0x7fc0));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(r));
}

BERT_AVX512 inline __m512 load(const float* p) { return _mm512_loadu_ps(p); }
BERT_AVX512 inline __m512 load(const c10::BFloat16* p) { return load_bf16(p); }
BERT_AVX512 inline void store(float* p, __m512 y) { _mm512_storeu_ps(p, y); }
BERT_AVX512 inline void store(c10::BFloat16* p, __m512 y) { store_bf16(p, y); }

// e^x for 16 floats: Cody-Waite reduction x = k ln2 + r, |r| <= ln2 / 2, a degree-7 Taylor
// polynomial for e^r (truncation error < 6e-9) and scalef for 2^k (underflows to 0 smoothly).
// Relative error a few ulp; -inf -> 0, x > 88.73 (and +inf) -> inf, NaN -> NaN.
BERT_AVX512 inline __m512 exp(__m512 x) {
  // Clamped to [-110, 89] (e^-110 underflows to 0, e^89 overflows to inf through scalef) so that
  // r below is finite; min/max_ps return their 2nd operand for NaN, so NaN passes through.
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-110.0f), x));
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.42860682030941723212e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, k);
}

#else

inline bool cpu_has_avx512() { return false; }

#endif

}  // namespace bert::model::simd
