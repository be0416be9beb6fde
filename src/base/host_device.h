// Marks small math functions that both our CUDA kernels (compiled by nvcc) and their host-side
// tests (compiled by the C++ compiler of either build) include, so that a test on a machine
// without a GPU runs the very arithmetic a kernel runs. No CUDA header is needed: under nvcc the
// qualifiers are keywords, elsewhere they vanish.
#pragma once

#include <cmath>
#include <limits>

#if defined(__CUDACC__)
#define VQD_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define VQD_HOST_DEVICE inline
#endif

namespace vqd::hd {

// The float functions as each side spells them; the device's are CUDA's (up to 2 ulp off glibc's).
VQD_HOST_DEVICE float Exp(float x) { return ::expf(x); }
VQD_HOST_DEVICE float Log(float x) { return ::logf(x); }
VQD_HOST_DEVICE float Log1p(float x) { return ::log1pf(x); }
VQD_HOST_DEVICE float Abs(float x) { return ::fabsf(x); }
VQD_HOST_DEVICE double ExpD(double x) { return ::exp(x); }
VQD_HOST_DEVICE double LogD(double x) { return ::log(x); }
#if defined(__CUDA_ARCH__)
VQD_HOST_DEVICE bool IsInf(float x) { return isinf(x); }
VQD_HOST_DEVICE bool IsNan(float x) { return isnan(x); }
#else
VQD_HOST_DEVICE bool IsInf(float x) { return std::isinf(x); }
VQD_HOST_DEVICE bool IsNan(float x) { return std::isnan(x); }
#endif
VQD_HOST_DEVICE float Infinity() { return std::numeric_limits<float>::infinity(); }
// 1 / sqrt(x): rsqrtf on the device, as PyTorch's CUDA layer norm; exact division on the host.
VQD_HOST_DEVICE float Rsqrt(float x) {
#if defined(__CUDA_ARCH__)
  return ::rsqrtf(x);
#else
  return 1.0f / ::sqrtf(x);
#endif
}

}  // namespace vqd::hd
