// The fused residual add + LayerNorm + modulation kernel: one block per row, the row cached in
// shared memory as float, two-pass mean and variance in float (kernel_math.h).
#include <algorithm>
#include <limits>

#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/macros/Macros.h>

#include "base/cuda_dispatch.cuh"
#include "base/cuda_reduce.cuh"
#include "nn/kernels/cuda_ops.h"

namespace vqd::nn::kernels::cuda {
namespace {

template <typename T>
__global__ void AddNormKernel(AddNormArgs<T> a, int64_t table_rows) {
  extern __shared__ float cache[];
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float sum = AddNormPass1(a, row, cache, threadIdx.x, blockDim.x);
  const float mean = NormMean(vqd::cuda_reduce::BlockReduce(sum, scratch), a.d);
  const float squares = AddNormPass2(cache, mean, a.d, threadIdx.x, blockDim.x);
  const float rstd = NormRstd(vqd::cuda_reduce::BlockReduce(squares, scratch), a.d, a.eps);
  if (a.modulation == NormModulation::kAda) {
    const int64_t t = a.t[row / a.rows_per_sample];
    CUDA_KERNEL_ASSERT(t >= 0 && t < table_rows);
  }
  AddNormPass3(a, row, cache, mean, rstd, threadIdx.x, blockDim.x);
}

void CheckLike(const at::Tensor& t, const at::Tensor& like, const char* name) {
  TORCH_CHECK(t.device() == like.device() && t.scalar_type() == like.scalar_type(), "AddNorm: ", name,
              " must be on ", like.device(), " in ", like.scalar_type(), ", got ", t.device(), " ", t.scalar_type());
}

}  // namespace

at::Tensor AddNorm(const at::Tensor& x, at::Tensor& residual, const at::Tensor& weight, const at::Tensor& bias,
                   const at::Tensor& t, double eps, NormModulation modulation) {
  TORCH_CHECK(residual.is_cuda() && residual.is_contiguous() && residual.dim() >= 1,
              "AddNorm: the residual must be a contiguous CUDA tensor");
  const int64_t d = residual.size(-1);
  TORCH_CHECK(d >= 1 && d <= kMaxNormWidth, "AddNorm: rows of ", d, " elements; the fused kernel takes 1 to ",
              kMaxNormWidth);
  at::Tensor x_c;
  if (x.defined()) {
    CheckLike(x, residual, "x");
    TORCH_CHECK(x.sizes() == residual.sizes(), "AddNorm: x ", x.sizes(), " and the residual ", residual.sizes(),
                " differ in shape");
    x_c = x.contiguous();
  }
  int64_t table_rows = 0, rows_per_sample = 1;
  if (modulation == NormModulation::kAda) {
    CheckLike(weight, residual, "the AdaLayerNorm table");
    TORCH_CHECK(residual.dim() == 3, "AddNorm: AdaLayerNorm takes [R, N, D], got ", residual.sizes());
    TORCH_CHECK(weight.dim() == 2 && weight.size(1) == 2 * d && weight.is_contiguous(),
                "AddNorm: the AdaLayerNorm table must be a contiguous [T, ", 2 * d, "], got ", weight.sizes());
    TORCH_CHECK(t.defined() && t.device() == residual.device() && t.scalar_type() == at::kLong && t.dim() == 1 &&
                    t.size(0) == residual.size(0) && t.is_contiguous(),
                "AddNorm: timesteps must be a contiguous int64 [", residual.size(0), "] on ", residual.device());
    table_rows = weight.size(0);
    rows_per_sample = residual.size(1);
  } else if (modulation == NormModulation::kAffine) {
    for (const at::Tensor* p : {&weight, &bias}) {
      if (!p->defined()) continue;
      CheckLike(*p, residual, "the affine weight and bias");
      TORCH_CHECK(p->dim() == 1 && p->size(0) == d && p->is_contiguous(), "AddNorm: affine parameters must be [",
                  d, "]");
    }
  }
  c10::cuda::CUDAGuard guard(residual.device());
  at::Tensor out = at::empty_like(residual);
  const int64_t rows = residual.numel() / d;
  if (rows == 0) return out;
  TORCH_CHECK(rows <= std::numeric_limits<int32_t>::max(), "AddNorm: too many rows (", rows, ")");
  const int threads = static_cast<int>(std::min<int64_t>(256, (d + 31) / 32 * 32));
  const size_t shared = static_cast<size_t>(d) * sizeof(float);
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  VQD_DISPATCH_FLOAT_HALF_BF16(residual.scalar_type(), "vqd AddNorm", [&] {
    AddNormArgs<scalar_t> a;
    a.x = x_c.defined() ? x_c.const_data_ptr<scalar_t>() : nullptr;
    a.residual = residual.mutable_data_ptr<scalar_t>();
    a.out = out.mutable_data_ptr<scalar_t>();
    a.weight = weight.defined() ? weight.const_data_ptr<scalar_t>() : nullptr;
    a.bias = bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr;
    a.t = t.defined() ? t.const_data_ptr<int64_t>() : nullptr;
    a.rows_per_sample = rows_per_sample;
    a.d = d;
    a.eps = static_cast<float>(eps);
    a.modulation = modulation;
    AddNormKernel<scalar_t><<<static_cast<unsigned>(rows), threads, shared, stream>>>(a, table_rows);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace vqd::nn::kernels::cuda
