#include "nn/kernels/bias_quick_gelu.h"

#include "nn/layers.h"
#ifdef VQD_WITH_CUDA
#include "nn/kernels/cuda_ops.h"
#endif

namespace vqd::nn::kernels {

torch::Tensor BiasQuickGeluReference(const torch::Tensor& x, const torch::Tensor& bias) { return nn::QuickGelu(x + bias); }

torch::Tensor BiasQuickGeluInPlace(torch::Tensor x, const torch::Tensor& bias) {
  if (x.is_cuda()) {
#ifdef VQD_WITH_CUDA
    cuda::BiasQuickGeluInPlace(x, bias);
    return x;
#else
    TORCH_CHECK(false, "BiasQuickGeluInPlace: CUDA tensors in a build without CUDA");
#endif
  }
  return x.copy_(BiasQuickGeluReference(x, bias));
}

}  // namespace vqd::nn::kernels
