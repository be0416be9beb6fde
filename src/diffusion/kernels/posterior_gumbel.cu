// The fused posterior + Gumbel-max draw: one warp per (sample, position) column, its lanes over the
// classes (posterior_math.h): the maximum and the exponential sum of q for the logsumexp, then the
// posterior logit of every class plus its Gumbel noise, reduced to argmax in PyTorch's order.
#include <limits>

#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "base/cuda_reduce.cuh"
#include "diffusion/kernels/cuda_ops.h"

namespace vqd::diffusion::kernels::cuda {
namespace {

struct ColumnArgs {
  const float* x0;
  int64_t x0_stride_b, x0_stride_k, x0_stride_n;
  const float* u;
  int64_t u_stride_b, u_stride_k, u_stride_n;
  const int64_t* x_t;  // null without the posterior
  int64_t xt_stride_b, xt_stride_n;
  const int64_t* t;
  ScheduleTables tables;
  bool posterior;
  int64_t batch, classes, positions;
  int64_t* out;  // [B, N] contiguous
};

__device__ __forceinline__ ArgmaxState WarpArgmax(ArgmaxState s) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float value = __shfl_xor_sync(0xffffffffu, s.value, offset);
    const int64_t index = __shfl_xor_sync(0xffffffffu, static_cast<long long>(s.index), offset);
    if (index >= 0 && (s.index < 0 || ArgmaxBefore(value, index, s.value, s.index))) {
      s.value = value;
      s.index = index;
    }
  }
  return s;
}

constexpr int kWarpsPerBlock = 8;

__global__ void GumbelArgmaxKernel(ColumnArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t column = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (column >= a.batch * a.positions) return;  // the whole warp leaves together
  const int64_t b = column / a.positions;
  const int64_t n = column % a.positions;
  const StridedColumn x0{a.x0 + b * a.x0_stride_b + n * a.x0_stride_n, a.x0_stride_k};
  const StridedColumn u{a.u + b * a.u_stride_b + n * a.u_stride_n, a.u_stride_k};
  ArgmaxState best;
  if (a.posterior) {
    const int64_t t = a.t[b];
    const int64_t x_t = a.x_t[b * a.xt_stride_b + n * a.xt_stride_n];
    CUDA_KERNEL_ASSERT(t >= 1 && x_t >= 0 && x_t <= a.classes);
    const PosteriorColumn c = MakeColumn(a.tables, t, x_t, a.classes);
    const float shift = LseShift(vqd::cuda_reduce::WarpMax(PartialMaxQ(x0, c, lane, 32)));
    const float lse = LseFinish(vqd::cuda_reduce::WarpSum(PartialExpSumQ(x0, c, shift, lane, 32)), shift);
    best = PartialPosteriorArgmax(x0, u, c, lse, lane, 32);
  } else {
    best = PartialX0Argmax(x0, u, a.classes, lane, 32);
  }
  best = WarpArgmax(best);
  if (lane == 0) a.out[b * a.positions + n] = best.index;
}

}  // namespace

at::Tensor GumbelArgmaxColumns(const at::Tensor& log_p_x_0, const at::Tensor& x_t, const at::Tensor& t,
                               const at::Tensor& uniform, const ScheduleTables* tables) {
  const bool posterior = tables != nullptr;
  TORCH_CHECK(log_p_x_0.is_cuda() && log_p_x_0.scalar_type() == at::kFloat && log_p_x_0.dim() == 3,
              "GumbelArgmax: log p(x_0) must be a float32 [B, K, N] CUDA tensor, got ", log_p_x_0.sizes());
  const int64_t batch = log_p_x_0.size(0), classes = log_p_x_0.size(1), positions = log_p_x_0.size(2);
  const int64_t draws = posterior ? classes + 1 : classes;
  TORCH_CHECK(uniform.device() == log_p_x_0.device() && uniform.scalar_type() == at::kFloat &&
                  uniform.dim() == 3 && uniform.size(0) == batch && uniform.size(1) == draws &&
                  uniform.size(2) == positions,
              "GumbelArgmax: uniforms must be float32 [", batch, ", ", draws, ", ", positions, "], got ",
              uniform.sizes());
  if (posterior) {
    TORCH_CHECK(x_t.device() == log_p_x_0.device() && x_t.scalar_type() == at::kLong && x_t.dim() == 2 &&
                    x_t.size(0) == batch && x_t.size(1) == positions,
                "GumbelArgmax: x_t must be int64 [", batch, ", ", positions, "]");
    TORCH_CHECK(t.device() == log_p_x_0.device() && t.scalar_type() == at::kLong && t.dim() == 1 &&
                    t.size(0) == batch && t.is_contiguous(),
                "GumbelArgmax: t must be a contiguous int64 [", batch, "]");
  }
  c10::cuda::CUDAGuard guard(log_p_x_0.device());
  at::Tensor out = at::empty({batch, positions}, log_p_x_0.options().dtype(at::kLong));
  const int64_t columns = batch * positions;
  if (columns == 0) return out;
  const int64_t blocks = (columns + kWarpsPerBlock - 1) / kWarpsPerBlock;
  TORCH_CHECK(blocks <= std::numeric_limits<int32_t>::max(), "GumbelArgmax: too many columns (", columns, ")");
  ColumnArgs a;
  a.x0 = log_p_x_0.const_data_ptr<float>();
  a.x0_stride_b = log_p_x_0.stride(0);
  a.x0_stride_k = log_p_x_0.stride(1);
  a.x0_stride_n = log_p_x_0.stride(2);
  a.u = uniform.const_data_ptr<float>();
  a.u_stride_b = uniform.stride(0);
  a.u_stride_k = uniform.stride(1);
  a.u_stride_n = uniform.stride(2);
  a.x_t = posterior ? x_t.const_data_ptr<int64_t>() : nullptr;
  a.xt_stride_b = posterior ? x_t.stride(0) : 0;
  a.xt_stride_n = posterior ? x_t.stride(1) : 0;
  a.t = posterior ? t.const_data_ptr<int64_t>() : nullptr;
  a.tables = posterior ? *tables : ScheduleTables{};
  a.posterior = posterior;
  a.batch = batch;
  a.classes = classes;
  a.positions = positions;
  a.out = out.mutable_data_ptr<int64_t>();
  GumbelArgmaxKernel<<<static_cast<unsigned>(blocks), kWarpsPerBlock * 32, 0, at::cuda::getCurrentCUDAStream()>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace vqd::diffusion::kernels::cuda
