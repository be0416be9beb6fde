// Ref: diffusers/schedulers/scheduling_vq_diffusion.py q_posterior and its helpers, batched with a
// timestep per sample (diffusers takes one per call), keeping the reference's operation order.
#pragma once

#include <torch/torch.h>

#include "diffusion/vq_schedule.h"

namespace vqd::diffusion {

// log p(x_{t-1} | x_t) from log p(x_0 | x_t).
//   log_p_x_0: float32 [B, K, N]; x_t: int64 [B, N] (K = mask); t: int64 [B], every t >= 1.
//   Returns float32 [B, K + 1, N] (not clamped, as in diffusers).
// `schedule` must be on the tensors' device.
torch::Tensor QPosterior(const VqSchedule& schedule, const torch::Tensor& log_p_x_0, const torch::Tensor& x_t,
                         const torch::Tensor& t);

// log q(x_t | x_0) for known tokens x_0 (int64 [B, N], no mask) at one timestep t in [0, T):
// float32 [B, K + 1, N]: the token itself with a + b, any other code with b, the mask with c (the
// official q_pred, which editing samples from to noise an encoded image; spec 9.5).
torch::Tensor LogQXtGivenX0(const VqSchedule& schedule, const torch::Tensor& x_0, int64_t t);

// log(one_hot(x, num_classes)) with log(1e-30) for the zeros: int64 [B, N] -> float32 [B, C, N].
torch::Tensor IndexToLogOnehot(const torch::Tensor& x, int64_t num_classes);

}  // namespace vqd::diffusion
