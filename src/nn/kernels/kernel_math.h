// The arithmetic of the fused transformer kernels (add_layer_norm.cu, bias_quick_gelu.cu,
// log_softmax.cu), per element and per partial row, shared with their host-side tests. Each row
// pass takes (begin, step): a CUDA thread runs it over its strided share of a row and the block
// reduces the partial results; the tests run it with (0, 1), which is the kernel with its
// reductions done in order. No CUDA header: the CPU build's tests compile this too.
#pragma once

#include <cmath>
#include <cstdint>

#include "base/host_device.h"

namespace vqd::nn::kernels {

// The widest row the fused LayerNorm kernel takes (the row is cached in shared memory).
constexpr int64_t kMaxNormWidth = 12288;

// ---------------------------------------------------------------------------------------------
// LayerNorm of (residual += x), then a per-row multiplier and offset.

enum class NormModulation : int {
  kNone = 0,    // LN(v)
  kAda = 1,     // LN(v) * (1 + table[t[row / rows_per_sample], j]) + table[..., D + j]  (AdaLayerNorm)
  kAffine = 2,  // LN(v) * weight[j] + bias[j], either may be null                          (nn.LayerNorm)
};

template <typename T>
struct AddNormArgs {
  const T* x = nullptr;       // [M, D], or null: nothing is added
  T* residual = nullptr;      // [M, D]: becomes residual + x (rounded to T, as PyTorch's add), then is normalised
  T* out = nullptr;           // [M, D]
  const T* weight = nullptr;  // kAda: the [T, 2D] table (scale, then shift); kAffine: weight [D]
  const T* bias = nullptr;    // kAffine: bias [D]
  const int64_t* t = nullptr;  // kAda: one timestep per sample
  int64_t rows_per_sample = 1;  // kAda: rows (tokens) of one sample
  int64_t d = 0;
  float eps = 1e-5f;
  NormModulation modulation = NormModulation::kNone;
};

VQD_HOST_DEVICE float NormMean(float sum, int64_t d) { return sum / static_cast<float>(d); }
// Two-pass variance (sum of squared deviations from the mean), biased as LayerNorm's.
VQD_HOST_DEVICE float NormRstd(float centered_square_sum, int64_t d, float eps) {
  return hd::Rsqrt(centered_square_sum / static_cast<float>(d) + eps);
}
VQD_HOST_DEVICE float Modulate(float v, float mean, float rstd, float mul, float add) {
  return (v - mean) * rstd * mul + add;
}

// Pass 1: writes the residual row, caches its values as float, returns their partial sum.
template <typename T>
VQD_HOST_DEVICE float AddNormPass1(const AddNormArgs<T>& a, int64_t row, float* cache, int64_t begin, int64_t step) {
  T* residual = a.residual + row * a.d;
  const T* x = a.x != nullptr ? a.x + row * a.d : nullptr;
  float sum = 0.0f;
  for (int64_t j = begin; j < a.d; j += step) {
    T v = residual[j];
    if (x != nullptr) {
      v = static_cast<T>(static_cast<float>(v) + static_cast<float>(x[j]));
      residual[j] = v;
    }
    cache[j] = static_cast<float>(v);
    sum += cache[j];
  }
  return sum;
}

// Pass 2: partial sum of squared deviations.
VQD_HOST_DEVICE float AddNormPass2(const float* cache, float mean, int64_t d, int64_t begin, int64_t step) {
  float sum = 0.0f;
  for (int64_t j = begin; j < d; j += step) {
    const float c = cache[j] - mean;
    sum += c * c;
  }
  return sum;
}

// Pass 3: the output row.
template <typename T>
VQD_HOST_DEVICE void AddNormPass3(const AddNormArgs<T>& a, int64_t row, const float* cache, float mean, float rstd,
                                  int64_t begin, int64_t step) {
  T* out = a.out + row * a.d;
  const T* scale = nullptr;
  const T* shift = nullptr;
  if (a.modulation == NormModulation::kAda) {
    scale = a.weight + a.t[row / a.rows_per_sample] * 2 * a.d;
    shift = scale + a.d;
  } else if (a.modulation == NormModulation::kAffine) {
    scale = a.weight;
    shift = a.bias;
  }
  for (int64_t j = begin; j < a.d; j += step) {
    float mul = 1.0f, add = 0.0f;
    if (a.modulation == NormModulation::kAda) {
      mul = 1.0f + static_cast<float>(scale[j]);
      add = static_cast<float>(shift[j]);
    } else if (a.modulation == NormModulation::kAffine) {
      mul = scale != nullptr ? static_cast<float>(scale[j]) : 1.0f;
      add = shift != nullptr ? static_cast<float>(shift[j]) : 0.0f;
    }
    out[j] = static_cast<T>(Modulate(cache[j], mean, rstd, mul, add));
  }
}

// The kernel's computation of one row with its reductions done in order (host tests).
template <typename T>
inline void AddNormRowSerial(const AddNormArgs<T>& a, int64_t row, float* cache) {
  const float mean = NormMean(AddNormPass1(a, row, cache, 0, 1), a.d);
  const float rstd = NormRstd(AddNormPass2(cache, mean, a.d, 0, 1), a.d, a.eps);
  AddNormPass3(a, row, cache, mean, rstd, 0, 1);
}

// ---------------------------------------------------------------------------------------------
// Bias + quick GELU: z = x + b, z * sigmoid(1.702 z) (diffusers' ApproximateGELU), in float.

VQD_HOST_DEVICE float QuickGeluValue(float z) { return z * (1.0f / (1.0f + hd::Exp(-1.702f * z))); }

template <typename T>
VQD_HOST_DEVICE T BiasQuickGelu(T x, T bias) {
  return static_cast<T>(QuickGeluValue(static_cast<float>(x) + static_cast<float>(bias)));
}

// ---------------------------------------------------------------------------------------------
// log-softmax of one row of class logits into float32: the maximum in float, the sum of
// exponentials and the result in double, as diffusers' float64 log_softmax.

template <typename T>
VQD_HOST_DEVICE float RowPartialMax(const T* row, int64_t k, int64_t begin, int64_t step) {
  float m = -hd::Infinity();
  for (int64_t j = begin; j < k; j += step) {
    const float v = static_cast<float>(row[j]);
    m = v > m ? v : m;
  }
  return m;
}

template <typename T>
VQD_HOST_DEVICE double RowPartialExpSum(const T* row, float max, int64_t k, int64_t begin, int64_t step) {
  double sum = 0.0;
  for (int64_t j = begin; j < k; j += step) sum += hd::ExpD(static_cast<double>(static_cast<float>(row[j])) - max);
  return sum;
}

template <typename T>
VQD_HOST_DEVICE void LogSoftmaxPassOut(const T* row, float* out, float max, double log_sum, int64_t k, int64_t begin,
                                       int64_t step) {
  for (int64_t j = begin; j < k; j += step) {
    out[j] = static_cast<float>(static_cast<double>(static_cast<float>(row[j])) - max - log_sum);
  }
}

template <typename T>
inline void LogSoftmaxRowSerial(const T* row, float* out, int64_t k) {
  const float max = RowPartialMax(row, k, 0, 1);
  const double log_sum = hd::LogD(RowPartialExpSum(row, max, k, 0, 1));
  LogSoftmaxPassOut(row, out, max, log_sum, k, 0, 1);
}

}  // namespace vqd::nn::kernels
