// Warp and block reductions for our kernels (.cu files only). Blocks must be whole warps.
#pragma once

#include <cstdint>

namespace vqd::cuda_reduce {

template <typename T>
__device__ __forceinline__ T WarpSum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename T>
__device__ __forceinline__ T WarpMax(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const T other = __shfl_xor_sync(0xffffffffu, v, offset);
    v = other > v ? other : v;
  }
  return v;
}

// The sum (or maximum) over the block, returned to every thread. `scratch` holds 32 values; it may
// be reused by the next call (each call starts with a barrier).
template <typename T, bool kMax = false>
__device__ __forceinline__ T BlockReduce(T v, T* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = kMax ? WarpMax(v) : WarpSum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = lane < warps ? scratch[lane] : (kMax ? scratch[0] : T(0));
    w = kMax ? WarpMax(w) : WarpSum(w);
    if (lane == 0) scratch[0] = w;
  }
  __syncthreads();
  return scratch[0];
}

}  // namespace vqd::cuda_reduce
