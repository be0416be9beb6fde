// LayerNorm fused with the residual add before it and the modulation after it: the three norms of
// a transformer block and the output norm, each one pass over the rows instead of five or six
// elementwise kernels. On CUDA the fused kernel (add_layer_norm.cu); elsewhere, and as the tests'
// reference, the same in plain libtorch ops. No CUDA header here: the CPU build compiles it.
#pragma once

#include <torch/torch.h>

#include "nn/kernels/kernel_math.h"  // kMaxNormWidth

namespace vqd::nn::kernels {

// residual += x (skipped when x is undefined), then for the rows of sample r
//   LN(residual) * (1 + table[t[r], :D]) + table[t[r], D:]      (diffusers' AdaLayerNorm, no affine)
// x, residual [R, N, D] (residual contiguous; it is updated in place); table [T, 2D] as
// AdaLayerNorm::Tabulate makes it; t [R] int64, each < T; all on one device, one dtype.
torch::Tensor AddAdaLayerNorm(const torch::Tensor& x, torch::Tensor& residual, const torch::Tensor& table,
                              const torch::Tensor& t, double eps);
torch::Tensor AddAdaLayerNormReference(const torch::Tensor& x, torch::Tensor& residual, const torch::Tensor& table,
                                       const torch::Tensor& t, double eps);

// residual += x (skipped when x is undefined), then layer_norm(residual, [D], weight, bias, eps).
// weight and bias [D] (either may be undefined: no affine).
torch::Tensor AddLayerNorm(const torch::Tensor& x, torch::Tensor& residual, const torch::Tensor& weight,
                           const torch::Tensor& bias, double eps);
torch::Tensor AddLayerNormReference(const torch::Tensor& x, torch::Tensor& residual, const torch::Tensor& weight,
                                    const torch::Tensor& bias, double eps);

}  // namespace vqd::nn::kernels
