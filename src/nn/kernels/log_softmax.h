// The output head's log-softmax over the classes, token-major: logits [R, N, K] with the classes
// contiguous, in float32 with the exponential sum in float64 (diffusers takes log_softmax of a
// float64 copy). On CUDA the fused kernel (log_softmax.cu) reads the half-precision logits once
// per pass and writes float32 directly; elsewhere, and as the tests' reference, libtorch ops.
#pragma once

#include <torch/torch.h>

namespace vqd::nn::kernels {

// log_softmax over the last dimension of `logits` (any floating dtype), as float32 of the same
// shape. When `out` is defined (float32, contiguous, the same shape) the result is written there
// and `out` is returned: a static buffer a CUDA graph writes into.
torch::Tensor LogSoftmaxClasses(const torch::Tensor& logits, torch::Tensor out = {});
// The same in libtorch ops: log_softmax of a float64 copy, cast to float32.
torch::Tensor LogSoftmaxClassesReference(const torch::Tensor& logits);

}  // namespace vqd::nn::kernels
