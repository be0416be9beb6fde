// Entry point of the CUDA kernel of this folder, for the dispatcher in posterior_gumbel.cc. Plain
// C++ over at::Tensor; defined in posterior_gumbel.cu, which the CUDA build alone compiles.
#pragma once

#include <ATen/core/Tensor.h>

#include "diffusion/kernels/posterior_math.h"

namespace vqd::diffusion::kernels::cuda {

// With `tables`: the posterior draw (t [B], uniform [B, K + 1, N]); without: the t = 0 draw
// (uniform [B, K, N]). log_p_x_0 [B, K, N] float32 any strides; x_t [B, N] int64. Returns [B, N].
at::Tensor GumbelArgmaxColumns(const at::Tensor& log_p_x_0, const at::Tensor& x_t, const at::Tensor& t,
                               const at::Tensor& uniform, const ScheduleTables* tables);

}  // namespace vqd::diffusion::kernels::cuda
