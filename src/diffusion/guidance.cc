#include "diffusion/guidance.h"

namespace vqd::diffusion {

torch::Tensor ApplyGuidance(const torch::Tensor& uncond, const torch::Tensor& cond, const torch::Tensor& scale) {
  torch::Tensor guided = uncond + scale.view({-1, 1, 1}) * (cond - uncond);
  return guided - torch::logsumexp(guided, 1, /*keepdim=*/true);
}

}  // namespace vqd::diffusion
