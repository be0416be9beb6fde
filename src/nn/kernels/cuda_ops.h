// Entry points of the CUDA kernels of this folder, for the dispatchers in the .cc files. Plain C++
// over at::Tensor; defined in the .cu files, which the CUDA build alone compiles (vqd_nn_cuda).
#pragma once

#include <ATen/core/Tensor.h>

#include "nn/kernels/kernel_math.h"

namespace vqd::nn::kernels::cuda {

// See add_layer_norm.h. weight: the AdaLN table (kAda) or the affine weight (kAffine).
at::Tensor AddNorm(const at::Tensor& x, at::Tensor& residual, const at::Tensor& weight, const at::Tensor& bias,
                   const at::Tensor& t, double eps, NormModulation modulation);
// x = quick_gelu(x + bias), in place; x [..., F] contiguous, bias [F].
void BiasQuickGeluInPlace(at::Tensor& x, const at::Tensor& bias);
// out[r] = log_softmax(logits[r]) over the last dimension; logits contiguous, out float32 contiguous.
void LogSoftmaxLastDim(const at::Tensor& logits, at::Tensor& out);

}  // namespace vqd::nn::kernels::cuda
