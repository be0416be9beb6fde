#include "diffusion/gumbel_sampler.h"

#include <ATen/CPUGeneratorImpl.h>
#ifdef VQD_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

namespace vqd::diffusion {

torch::Generator MakeGenerator(const torch::Device& device, uint64_t seed) {
  // A new generator, not a clone of the default one: libtorch 1.13's GeneratorImpl::clone()
  // never releases its result (its weak count starts at 0), which leaked every clone.
  // set_current_seed resets the state as torch.Generator.manual_seed does.
  torch::Generator gen;
  if (device.is_cuda()) {
#ifdef VQD_WITH_CUDA
    gen = at::cuda::detail::createCUDAGenerator(device.has_index() ? device.index() : 0);
#else
    TORCH_CHECK(false, "a CUDA generator was requested from a build without CUDA");
#endif
  } else {
    gen = at::detail::createCPUGenerator();
  }
  gen.set_current_seed(seed);
  return gen;
}

torch::Tensor DrawUniform(torch::Generator& generator, c10::IntArrayRef shape, const torch::Device& device) {
  // at::rand's kernel takes the generator's mutex itself.
  return torch::rand(shape, generator, torch::TensorOptions().dtype(torch::kFloat32).device(device));
}

torch::Tensor GumbelArgmax(const torch::Tensor& logits, const torch::Tensor& uniform) {
  constexpr double kEps = 1e-30;
  torch::Tensor gumbel = -torch::log(-torch::log(uniform + kEps) + kEps);
  return (gumbel + logits).argmax(1);
}

}  // namespace vqd::diffusion
