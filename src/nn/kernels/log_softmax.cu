// log-softmax along contiguous rows into float32: one block per row; the maximum in float, the sum
// of exponentials and the subtraction in double (kernel_math.h).
#include <algorithm>
#include <limits>

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "base/cuda_dispatch.cuh"
#include "base/cuda_reduce.cuh"
#include "nn/kernels/cuda_ops.h"

namespace vqd::nn::kernels::cuda {
namespace {

template <typename T>
__global__ void LogSoftmaxKernel(const T* logits, float* out, int64_t k) {
  __shared__ float max_scratch[32];
  __shared__ double sum_scratch[32];
  const int64_t row = blockIdx.x;
  const T* in = logits + row * k;
  const float max = vqd::cuda_reduce::BlockReduce<float, true>(RowPartialMax(in, k, threadIdx.x, blockDim.x),
                                                                max_scratch);
  const double sum = vqd::cuda_reduce::BlockReduce<double>(RowPartialExpSum(in, max, k, threadIdx.x, blockDim.x),
                                                           sum_scratch);
  LogSoftmaxPassOut(in, out + row * k, max, hd::LogD(sum), k, threadIdx.x, blockDim.x);
}

}  // namespace

void LogSoftmaxLastDim(const at::Tensor& logits, at::Tensor& out) {
  TORCH_CHECK(logits.is_cuda() && logits.is_contiguous() && logits.dim() >= 1,
              "LogSoftmax: logits must be a contiguous CUDA tensor");
  TORCH_CHECK(out.scalar_type() == at::kFloat && out.is_contiguous() && out.sizes() == logits.sizes() &&
                  out.device() == logits.device(),
              "LogSoftmax: out must be a contiguous float32 tensor shaped like the logits");
  const int64_t k = logits.size(-1);
  const int64_t rows = k == 0 ? 0 : logits.numel() / k;
  if (rows == 0) return;
  TORCH_CHECK(rows <= std::numeric_limits<int32_t>::max(), "LogSoftmax: too many rows (", rows, ")");
  c10::cuda::CUDAGuard guard(logits.device());
  const int threads = static_cast<int>(std::min<int64_t>(256, (k + 31) / 32 * 32));
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  VQD_DISPATCH_FLOAT_HALF_BF16(logits.scalar_type(), "vqd LogSoftmax", [&] {
    LogSoftmaxKernel<scalar_t><<<static_cast<unsigned>(rows), threads, 0, stream>>>(
        logits.const_data_ptr<scalar_t>(), out.mutable_data_ptr<float>(), k);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace vqd::nn::kernels::cuda
