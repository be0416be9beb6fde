// The feed-forward's bias and quick GELU (diffusers' ApproximateGELU, z * sigmoid(1.702 z)) in one
// pass over the up-projection's output, which is then computed without its bias. On CUDA the fused
// kernel (bias_quick_gelu.cu); elsewhere, and as the tests' reference, plain libtorch ops.
#pragma once

#include <torch/torch.h>

namespace vqd::nn::kernels {

// x = quick_gelu(x + bias), in place, and returns x. x [..., F] contiguous; bias [F]; one dtype.
torch::Tensor BiasQuickGeluInPlace(torch::Tensor x, const torch::Tensor& bias);
// The same in libtorch ops (a new tensor): QuickGelu(x + bias).
torch::Tensor BiasQuickGeluReference(const torch::Tensor& x, const torch::Tensor& bias);

}  // namespace vqd::nn::kernels
