// The storage dtypes our CUDA kernels take, listed once (vLLM's VLLM_DISPATCH_FLOATING_TYPES):
// float32, float16 and bfloat16, with the math in float32 (at::opmath_type) whatever the storage.
// Any other dtype fails with a message that names the op. Included by .cu files only.
#pragma once

#include <ATen/Dispatch.h>

#define VQD_DISPATCH_FLOAT_HALF_BF16(TYPE, NAME, ...)            \
  AT_DISPATCH_SWITCH(TYPE, NAME,                                 \
                     AT_DISPATCH_CASE(at::kFloat, __VA_ARGS__)   \
                     AT_DISPATCH_CASE(at::kHalf, __VA_ARGS__)    \
                     AT_DISPATCH_CASE(at::kBFloat16, __VA_ARGS__))
