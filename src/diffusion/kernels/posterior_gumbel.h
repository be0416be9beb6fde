// One denoising step's sampling: the posterior p(x_{t-1} | x_t) from log p(x_0 | x_t) and its
// Gumbel-max draw, fused into one pass per (sample, position) on CUDA (posterior_gumbel.cu)
// instead of some twenty kernels over [B, K + 1, N] temporaries. Elsewhere, and as the tests'
// reference, QPosterior followed by GumbelArgmax. The uniforms are drawn by the caller from each
// request's generator (DrawUniform), so the fused step draws exactly what diffusers draws.
// No CUDA header here: the CPU build compiles it.
#pragma once

#include <torch/torch.h>

#include "diffusion/kernels/posterior_math.h"
#include "diffusion/vq_schedule.h"

namespace vqd::diffusion {

// x_{t-1} = argmax_k(gumbel(u_k) + log p(x_{t-1} = k | x_t)) for t >= 1.
//   log_p_x_0: float32 [B, K, N], any strides (token-major views welcome); x_t: int64 [B, N];
//   t: int64 [B], each in [1, T); uniform: float32 [B, K + 1, N]. Returns int64 [B, N].
// `fused` selects the CUDA kernel for CUDA tensors; otherwise (or on the CPU) the reference runs.
torch::Tensor SamplePosterior(const VqSchedule& schedule, const torch::Tensor& log_p_x_0, const torch::Tensor& x_t,
                              const torch::Tensor& t, const torch::Tensor& uniform, bool fused);
torch::Tensor SamplePosteriorReference(const VqSchedule& schedule, const torch::Tensor& log_p_x_0,
                                       const torch::Tensor& x_t, const torch::Tensor& t, const torch::Tensor& uniform);

// The kernels' view of a schedule's six log tables (float32, on the schedule's device).
kernels::ScheduleTables TablesOf(const VqSchedule& schedule);

// The step at t = 0: argmax_k(gumbel(u_k) + log p(x_0 = k | x_t)); uniform [B, K, N].
torch::Tensor SampleX0(const torch::Tensor& log_p_x_0, const torch::Tensor& uniform, bool fused);

}  // namespace vqd::diffusion
