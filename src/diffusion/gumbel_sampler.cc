#include "diffusion/gumbel_sampler.h"

#include <ATen/Context.h>

namespace vqd::diffusion {

torch::Generator MakeGenerator(const torch::Device& device, uint64_t seed) {
  // Cloning the device's default generator gives a generator of the right implementation (CPU
  // mt19937 or CUDA Philox) without CUDA headers; set_current_seed resets its state as manual_seed.
  const torch::Device d = device.is_cuda() && !device.has_index() ? torch::Device(torch::kCUDA, 0) : device;
  torch::Generator gen = at::globalContext().defaultGenerator(d).clone();
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
