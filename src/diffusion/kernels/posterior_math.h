// The arithmetic of the fused posterior + Gumbel-max kernel (posterior_gumbel.cu), per class of
// one (sample, position) column, shared with its host-side tests. It follows QPosterior and
// GumbelArgmax (q_posterior.cc, gumbel_sampler.cc) operation by operation, in float32, with
// PyTorch's own formulas for logaddexp, logsumexp and argmax's order. Column passes take
// (begin, step): a warp's lane runs its strided share and the warp reduces; the tests run (0, 1).
// No CUDA header: the CPU build's tests compile this too.
#pragma once

#include <cmath>
#include <cstdint>

#include "base/host_device.h"

namespace vqd::diffusion::kernels {

// at::logaddexp: equal infinities pass through, else max + log1p(exp(-|a - b|)).
VQD_HOST_DEVICE float LogAddExp(float a, float b) {
  if (hd::IsInf(a) && a == b) return a;
  const float m = a > b ? a : b;
  return m + hd::Log1p(hd::Exp(-hd::Abs(a - b)));
}

// -log(-log(u + 1e-30) + 1e-30), diffusers' gumbel_noised.
VQD_HOST_DEVICE float GumbelNoise(float u) { return -hd::Log(-hd::Log(u + 1e-30f) + 1e-30f); }

// Whether (a, ia) comes first in argmax's order: NaN above everything, ties to the lower index.
VQD_HOST_DEVICE bool ArgmaxBefore(float a, int64_t ia, float b, int64_t ib) {
  if (hd::IsNan(a)) return !hd::IsNan(b) || ia < ib;
  if (hd::IsNan(b)) return false;
  return a == b ? ia < ib : a > b;
}

// The six float32 log schedules of a VqSchedule, on the kernel's device.
struct ScheduleTables {
  const float* log_at = nullptr;
  const float* log_bt = nullptr;
  const float* log_ct = nullptr;
  const float* log_cumprod_at = nullptr;
  const float* log_cumprod_bt = nullptr;
  const float* log_cumprod_ct = nullptr;
};

// What one (sample, position) column needs besides its log p(x_0) and uniforms.
struct PosteriorColumn {
  float cum_a = 0, cum_b = 0, cum_c = 0;     // log_cumprod_*[t]: q(x_t | x_0)
  float step_a = 0, step_b = 0, step_c = 0;  // log_*[t]: q(x_t | x_{t-1})
  float prev_a = 0, prev_b = 0, prev_c = 0;  // log_cumprod_*[t - 1]
  int64_t x_t = 0;                           // the column's token; num_classes is the mask
  int64_t num_classes = 0;                   // K
  float log_eps = 0;                         // log(1e-30), the log one-hot's zeros
};

VQD_HOST_DEVICE PosteriorColumn MakeColumn(const ScheduleTables& s, int64_t t, int64_t x_t, int64_t num_classes) {
  PosteriorColumn c;
  c.cum_a = s.log_cumprod_at[t];
  c.cum_b = s.log_cumprod_bt[t];
  c.cum_c = s.log_cumprod_ct[t];
  c.step_a = s.log_at[t];
  c.step_b = s.log_bt[t];
  c.step_c = s.log_ct[t];
  c.prev_a = s.log_cumprod_at[t - 1];
  c.prev_b = s.log_cumprod_bt[t - 1];
  c.prev_c = s.log_cumprod_ct[t - 1];
  c.x_t = x_t;
  c.num_classes = num_classes;
  c.log_eps = hd::Log(1e-30f);
  return c;
}

VQD_HOST_DEVICE bool Masked(const PosteriorColumn& c) { return c.x_t == c.num_classes; }
VQD_HOST_DEVICE float LogOnehot(const PosteriorColumn& c, int64_t k) { return k == c.x_t ? 0.0f : c.log_eps; }

// log q(x_t | x_0 = k), k < K.
VQD_HOST_DEVICE float LogQCumulative(const PosteriorColumn& c, int64_t k) {
  return Masked(c) ? c.cum_c : LogAddExp(LogOnehot(c, k) + c.cum_a, c.cum_b);
}

// log q(x_t | x_{t-1} = k), k <= K; the mask row (k = K) is the log one-hot's.
VQD_HOST_DEVICE float LogQStep(const PosteriorColumn& c, int64_t k) {
  if (k == c.num_classes) return LogOnehot(c, k);
  return Masked(c) ? c.step_c : LogAddExp(LogOnehot(c, k) + c.step_a, c.step_b);
}

// q_k = log p(x_0 = k | x_t) - log q(x_t | x_0 = k), before its normalisation.
VQD_HOST_DEVICE float PosteriorQ(float log_p_x_0, const PosteriorColumn& c, int64_t k) {
  return log_p_x_0 - LogQCumulative(c, k);
}

// at::logsumexp: an infinite maximum is replaced by 0 before exp(x - max); lse = log(sum) + max.
VQD_HOST_DEVICE float LseShift(float max) { return hd::IsInf(max) ? 0.0f : max; }
VQD_HOST_DEVICE float LseFinish(float sum, float shift) { return hd::Log(sum) + shift; }

// log p(x_{t-1} = k | x_t) for k <= K, from the unnormalised q_k (unused for k = K) and its lse:
// ((logaddexp((q - lse) + a', b') or c') + log q(x_t | x_{t-1} = k)) + lse.
VQD_HOST_DEVICE float PosteriorLogit(float q, float lse, const PosteriorColumn& c, int64_t k) {
  const float moved = k < c.num_classes ? LogAddExp((q - lse) + c.prev_a, c.prev_b) : c.prev_c;
  return (moved + LogQStep(c, k)) + lse;
}

// A column of float32 values with a stride.
struct StridedColumn {
  const float* base = nullptr;
  int64_t stride = 0;
  VQD_HOST_DEVICE float operator()(int64_t k) const { return base[k * stride]; }
};

// Pass 1: partial maximum of q over classes begin, begin + step, ... < K.
VQD_HOST_DEVICE float PartialMaxQ(const StridedColumn& x0, const PosteriorColumn& c, int64_t begin, int64_t step) {
  float m = -hd::Infinity();
  for (int64_t k = begin; k < c.num_classes; k += step) {
    const float q = PosteriorQ(x0(k), c, k);
    m = q > m ? q : m;
  }
  return m;
}

// Pass 2: partial sum of exp(q - shift).
VQD_HOST_DEVICE float PartialExpSumQ(const StridedColumn& x0, const PosteriorColumn& c, float shift, int64_t begin,
                                     int64_t step) {
  float sum = 0.0f;
  for (int64_t k = begin; k < c.num_classes; k += step) sum += hd::Exp(PosteriorQ(x0(k), c, k) - shift);
  return sum;
}

// The running argmax of a Gumbel-max draw.
struct ArgmaxState {
  float value = -hd::Infinity();
  int64_t index = -1;
  VQD_HOST_DEVICE void Offer(float v, int64_t i) {
    if (index < 0 || ArgmaxBefore(v, i, value, index)) {
      value = v;
      index = i;
    }
  }
};

// Pass 3 with the posterior: gumbel(u_k) + log p(x_{t-1} = k | x_t) over classes k <= K.
VQD_HOST_DEVICE ArgmaxState PartialPosteriorArgmax(const StridedColumn& x0, const StridedColumn& u,
                                                   const PosteriorColumn& c, float lse, int64_t begin,
                                                   int64_t step) {
  ArgmaxState best;
  for (int64_t k = begin; k <= c.num_classes; k += step) {
    const float q = k < c.num_classes ? PosteriorQ(x0(k), c, k) : 0.0f;
    best.Offer(GumbelNoise(u(k)) + PosteriorLogit(q, lse, c, k), k);
  }
  return best;
}

// The step at t = 0: gumbel(u_k) + log p(x_0 = k | x_t) over classes k < K.
VQD_HOST_DEVICE ArgmaxState PartialX0Argmax(const StridedColumn& x0, const StridedColumn& u, int64_t num_classes,
                                            int64_t begin, int64_t step) {
  ArgmaxState best;
  for (int64_t k = begin; k < num_classes; k += step) best.Offer(GumbelNoise(u(k)) + x0(k), k);
  return best;
}

// The kernel's computation of one column with its reductions done in order (host tests).
inline int64_t PosteriorArgmaxSerial(const StridedColumn& x0, const StridedColumn& u, const PosteriorColumn& c) {
  const float shift = LseShift(PartialMaxQ(x0, c, 0, 1));
  const float lse = LseFinish(PartialExpSumQ(x0, c, shift, 0, 1), shift);
  return PartialPosteriorArgmax(x0, u, c, lse, 0, 1).index;
}

}  // namespace vqd::diffusion::kernels
