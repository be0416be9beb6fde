// Ref: diffusers VQDiffusionScheduler.step / gumbel_noised: Gumbel-max sampling of one class per
// position from log-probabilities, with the uniforms drawn from a request's own generator.
#pragma once

#include <vector>

#include <torch/torch.h>

namespace vqd::diffusion {

// A generator like torch.Generator(device).manual_seed(seed): fresh state, independent of the
// global one, on the device whose kernels will draw from it.
torch::Generator MakeGenerator(const torch::Device& device, uint64_t seed);

// torch.rand(shape, generator=gen, device=device) in float32.
torch::Tensor DrawUniform(torch::Generator& generator, c10::IntArrayRef shape, const torch::Device& device);

// argmax_k(logits + gumbel(u)) with gumbel(u) = -log(-log(u + 1e-30) + 1e-30).
// logits, uniform: float32 [B, C, N] -> int64 [B, N].
torch::Tensor GumbelArgmax(const torch::Tensor& logits, const torch::Tensor& uniform);

}  // namespace vqd::diffusion
