// Fused cross-entropy: a custom autograd function over a row-parallel kernel (AVX-512 where the
// CPU has it, scalar otherwise; rows are independent, so the result does not depend on threads).
#include "model/cross_entropy.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

#include "model/simd.h"
#include "util/error.h"

namespace bert::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Row r's logsumexp, in S (float, or double for double logits).
template <typename T, typename S>
S row_logsumexp_scalar(const T* x, int64_t v) {
  for (int64_t j = 0; j < v; ++j) {
    if (std::isnan(static_cast<S>(x[j]))) return std::numeric_limits<S>::quiet_NaN();  // as the vector path
  }
  S max = -std::numeric_limits<S>::infinity();
  for (int64_t j = 0; j < v; ++j) max = std::max(max, static_cast<S>(x[j]));
  if (std::isinf(max) && max < 0) return max;  // all -inf
  S sum = 0;
  for (int64_t j = 0; j < v; ++j) sum += std::exp(static_cast<S>(x[j]) - max);
  return max + std::log(sum);
}

// grad[j] = scale * e^(x[j] - lse), in T.
template <typename T, typename S>
void row_grad_scalar(const T* x, T* grad, int64_t v, S lse, S scale) {
  for (int64_t j = 0; j < v; ++j) grad[j] = static_cast<T>(scale * std::exp(static_cast<S>(x[j]) - lse));
}

#ifdef BERT_HAVE_AVX512
template <typename T>
BERT_AVX512 float row_logsumexp_vector(const T* x, int64_t v) {
  const int64_t whole = v / 16 * 16;
  __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __mmask16 nan = 0;
  for (int64_t j = 0; j < whole; j += 16) {
    const __m512 a = simd::load(x + j);
    nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
    vmax = _mm512_max_ps(vmax, a);
  }
  float max = _mm512_reduce_max_ps(vmax);
  bool has_nan = nan != 0;
  for (int64_t j = whole; j < v; ++j) {
    const auto a = static_cast<float>(x[j]);
    has_nan = has_nan || std::isnan(a);
    max = std::max(max, a);
  }
  if (has_nan) return std::numeric_limits<float>::quiet_NaN();
  if (std::isinf(max) && max < 0) return max;
  const __m512 m = _mm512_set1_ps(max);
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t j = 0; j < whole; j += 16) vsum = _mm512_add_ps(vsum, simd::exp(_mm512_sub_ps(simd::load(x + j), m)));
  double sum = _mm512_reduce_add_ps(vsum);
  for (int64_t j = whole; j < v; ++j) sum += std::exp(static_cast<float>(x[j]) - max);
  return max + static_cast<float>(std::log(sum));
}

template <typename T>
BERT_AVX512 void row_grad_vector(const T* x, T* grad, int64_t v, float lse, float scale) {
  const int64_t whole = v / 16 * 16;
  const __m512 l = _mm512_set1_ps(lse), s = _mm512_set1_ps(scale);
  for (int64_t j = 0; j < whole; j += 16) {
    simd::store(grad + j, _mm512_mul_ps(s, simd::exp(_mm512_sub_ps(simd::load(x + j), l))));
  }
  for (int64_t j = whole; j < v; ++j) grad[j] = static_cast<T>(scale * std::exp(static_cast<float>(x[j]) - lse));
}
#endif

template <typename T>
constexpr bool kVectorType = std::is_same_v<T, float> || std::is_same_v<T, c10::BFloat16>;

template <typename T, typename S>
S row_logsumexp(const T* x, int64_t v, bool vector) {
#ifdef BERT_HAVE_AVX512
  if constexpr (kVectorType<T>) {
    if (vector) return row_logsumexp_vector(x, v);
  }
#endif
  (void)vector;
  return row_logsumexp_scalar<T, S>(x, v);
}

template <typename T, typename S>
void row_grad(const T* x, T* grad, int64_t v, S lse, S scale, bool vector) {
#ifdef BERT_HAVE_AVX512
  if constexpr (kVectorType<T>) {
    if (vector) return row_grad_vector(x, grad, v, lse, scale);
  }
#endif
  (void)vector;
  row_grad_scalar(x, grad, v, lse, scale);
}

// Fills lse [N] (S) and returns the summed per-row losses and the number of counted rows.
template <typename T, typename S>
std::pair<double, int64_t> forward_kernel(const T* x, const int64_t* target, S* lse, int64_t n, int64_t v,
                                          int64_t ignore_index) {
  const bool vector = simd::cpu_has_avx512();
  std::vector<double> row_loss(static_cast<size_t>(n), 0.0);
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (target[r] == ignore_index) continue;
      const T* row = x + r * v;
      lse[r] = row_logsumexp<T, S>(row, v, vector);
      row_loss[static_cast<size_t>(r)] = static_cast<double>(lse[r]) - static_cast<double>(row[target[r]]);
    }
  });
  double total = 0;  // summed in row order: the same for any thread count
  int64_t count = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (target[r] == ignore_index) continue;
    total += row_loss[static_cast<size_t>(r)];
    ++count;
  }
  return {total, count};
}

template <typename T, typename S>
void backward_kernel(const T* x, const int64_t* target, const S* lse, T* grad, int64_t n, int64_t v,
                     int64_t ignore_index, S scale) {
  const bool vector = simd::cpu_has_avx512();
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      T* g = grad + r * v;
      if (target[r] == ignore_index) {
        std::fill(g, g + v, static_cast<T>(0));
        continue;
      }
      const T* row = x + r * v;
      row_grad<T, S>(row, g, v, lse[r], scale, vector);
      // The target's scale * (p_t - 1), rounded once: p_t - 1 = expm1(x_t - lse) keeps its precision
      // when p_t is near 1 (a confidently predicted token), where scale * p_t - scale would cancel.
      const int64_t t = target[r];
      g[t] = static_cast<T>(scale * std::expm1(static_cast<S>(row[t]) - lse[r]));
    }
  });
}

template <typename F>
void dispatch(torch::ScalarType type, F&& f) {
  switch (type) {
    case torch::kFloat32: f(float{}, float{}); break;
    case torch::kBFloat16: f(c10::BFloat16{}, float{}); break;
    case torch::kFloat16: f(c10::Half{}, float{}); break;
    case torch::kFloat64: f(double{}, double{}); break;
    default: throw util::usage_error(std::string("cross_entropy: unsupported dtype ") + c10::toString(type));
  }
}

struct FusedCrossEntropy : public torch::autograd::Function<FusedCrossEntropy> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits_in,
                               const torch::Tensor& targets_in, int64_t ignore_index) {
    const auto logits = logits_in.contiguous();
    const auto targets = targets_in.contiguous();
    const int64_t n = logits.size(0), v = logits.size(1);
    const auto acc_type = logits.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    auto lse = torch::zeros({n}, logits.options().dtype(acc_type));
    std::pair<double, int64_t> sum{0.0, 0};
    dispatch(logits.scalar_type(), [&](auto t, auto s) {
      using T = decltype(t);
      using S = decltype(s);
      sum = forward_kernel<T, S>(logits.data_ptr<T>(), targets.data_ptr<int64_t>(), lse.data_ptr<S>(), n, v,
                                 ignore_index);
    });
    ctx->save_for_backward({logits, targets, lse});
    ctx->saved_data["ignore_index"] = ignore_index;
    ctx->saved_data["count"] = sum.second;
    const double mean = sum.second > 0 ? sum.first / static_cast<double>(sum.second)
                                       : std::numeric_limits<double>::quiet_NaN();
    return torch::full({}, mean, logits.options().dtype(acc_type));
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& logits = saved[0];
    const auto& targets = saved[1];
    const auto& lse = saved[2];
    const int64_t ignore_index = ctx->saved_data["ignore_index"].toInt();
    const int64_t count = ctx->saved_data["count"].toInt();
    const int64_t n = logits.size(0), v = logits.size(1);
    auto grad = torch::empty_like(logits);
    // A host read of a CPU scalar (a pointer, not .item(): this kernel makes no dispatcher sync call).
    const double g = grads[0].to(torch::kFloat64).contiguous().data_ptr<double>()[0] /
                     static_cast<double>(std::max<int64_t>(count, 1));
    dispatch(logits.scalar_type(), [&](auto t, auto s) {
      using T = decltype(t);
      using S = decltype(s);
      backward_kernel<T, S>(logits.data_ptr<T>(), targets.data_ptr<int64_t>(), lse.data_ptr<S>(),
                            grad.data_ptr<T>(), n, v, ignore_index, static_cast<S>(g));
    });
    return {grad, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore_index) {
  if (logits.dim() != 2 || targets.dim() != 1 || targets.size(0) != logits.size(0)) {
    throw util::input_error("cross_entropy: expected logits [N, V] and targets [N], got " +
                            c10::str(logits.sizes()) + " and " + c10::str(targets.sizes()));
  }
  if (!logits.is_cpu()) {
    return torch::nn::functional::cross_entropy(
        logits.scalar_type() == torch::kFloat64 ? logits : logits.to(torch::kFloat32), targets,
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore_index));
  }
  const auto t = targets.to(torch::kLong).contiguous();
  const int64_t v = logits.size(1);
  const int64_t* target = t.data_ptr<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if ((target[i] < 0 || target[i] >= v) && target[i] != ignore_index) {
      throw util::input_error("cross_entropy: target " + std::to_string(target[i]) + " at row " +
                              std::to_string(i) + " is outside [0, " + std::to_string(v) + ")");
    }
  }
  return FusedCrossEntropy::apply(logits, t, ignore_index);
}

#ifdef BERT_HAVE_AVX512
namespace {
BERT_AVX512 int64_t exp_floats_vector(const float* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, simd::exp(_mm512_loadu_ps(in + i)));
  return i;
}
}  // namespace
#endif

void exp_floats(const float* in, float* out, int64_t n) {
  int64_t i = 0;
#ifdef BERT_HAVE_AVX512
  if (simd::cpu_has_avx512()) i = exp_floats_vector(in, out, n);
#endif
  for (; i < n; ++i) out[i] = std::exp(in[i]);
}

}  // namespace bert::model
