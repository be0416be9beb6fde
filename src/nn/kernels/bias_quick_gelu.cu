// Bias + quick GELU, elementwise over [M, F] with the bias indexed by column (kernel_math.h).
#include <algorithm>

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "base/cuda_dispatch.cuh"
#include "nn/kernels/cuda_ops.h"

namespace vqd::nn::kernels::cuda {
namespace {

template <typename T>
__global__ void BiasQuickGeluKernel(T* x, const T* bias, int64_t n, int64_t width) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    x[i] = BiasQuickGelu(x[i], bias[i % width]);
  }
}

}  // namespace

void BiasQuickGeluInPlace(at::Tensor& x, const at::Tensor& bias) {
  TORCH_CHECK(x.is_cuda() && x.is_contiguous() && x.dim() >= 1, "BiasQuickGelu: x must be a contiguous CUDA tensor");
  const int64_t width = x.size(-1);
  TORCH_CHECK(bias.defined() && bias.device() == x.device() && bias.scalar_type() == x.scalar_type() &&
                  bias.dim() == 1 && bias.size(0) == width && bias.is_contiguous(),
              "BiasQuickGelu: bias must be a contiguous [", width, "] ", x.scalar_type(), " on ", x.device());
  const int64_t n = x.numel();
  if (n == 0) return;
  c10::cuda::CUDAGuard guard(x.device());
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 65535LL * 16);
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  VQD_DISPATCH_FLOAT_HALF_BF16(x.scalar_type(), "vqd BiasQuickGelu", [&] {
    BiasQuickGeluKernel<scalar_t><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        x.mutable_data_ptr<scalar_t>(), bias.const_data_ptr<scalar_t>(), n, width);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace vqd::nn::kernels::cuda
