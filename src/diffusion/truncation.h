// Ref: diffusers VQDiffusionPipeline.truncate. Keeps, per position, the most probable classes
// whose cumulative probability first reaches the rate (always the top one) and drops the rest.
#pragma once

#include <torch/torch.h>

namespace vqd::diffusion {

// log_p: float32 [B, K, N]; rate: float32 [B]. Dropped entries become -inf. Runs even at rate 1.0,
// where float32 rounding of the cumulative sum can still drop the far tail, exactly as diffusers.
torch::Tensor Truncate(const torch::Tensor& log_p, const torch::Tensor& rate);

// The pipeline's lower clamp after truncation (turns -inf into -70).
constexpr double kLogProbFloor = -70.0;

}  // namespace vqd::diffusion
