// Classifier-free guidance in log space, renormalised (diffusers VQDiffusionPipeline.__call__).
#pragma once

#include <torch/torch.h>

namespace vqd::diffusion {

// uncond, cond: float32 [B, K, N]; scale: float32 [B] (each sample its own).
// Returns u + s (c - u) - logsumexp_k(u + s (c - u)).
torch::Tensor ApplyGuidance(const torch::Tensor& uncond, const torch::Tensor& cond, const torch::Tensor& scale);

}  // namespace vqd::diffusion
