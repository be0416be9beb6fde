#include "nn/kernels/add_layer_norm.h"

#ifdef VQD_WITH_CUDA
#include "nn/kernels/cuda_ops.h"
#endif

namespace vqd::nn::kernels {

torch::Tensor AddAdaLayerNormReference(const torch::Tensor& x, torch::Tensor& residual, const torch::Tensor& table,
                                       const torch::Tensor& t, double eps) {
  if (x.defined()) residual.add_(x);
  const int64_t d = residual.size(-1);
  torch::Tensor modulation = table.index_select(0, t);                  // [R, 2D]
  torch::Tensor scale = modulation.narrow(1, 0, d).unsqueeze(1);         // [R, 1, D]
  torch::Tensor shift = modulation.narrow(1, d, d).unsqueeze(1);         // [R, 1, D]
  return torch::layer_norm(residual, {d}, {}, {}, eps) * (1 + scale) + shift;
}

torch::Tensor AddLayerNormReference(const torch::Tensor& x, torch::Tensor& residual, const torch::Tensor& weight,
                                    const torch::Tensor& bias, double eps) {
  if (x.defined()) residual.add_(x);
  return torch::layer_norm(residual, {residual.size(-1)}, weight, bias, eps);
}

torch::Tensor AddAdaLayerNorm(const torch::Tensor& x, torch::Tensor& residual, const torch::Tensor& table,
                              const torch::Tensor& t, double eps) {
  if (residual.is_cuda()) {
#ifdef VQD_WITH_CUDA
    return cuda::AddNorm(x, residual, table, {}, t, eps, NormModulation::kAda);
#else
    TORCH_CHECK(false, "AddAdaLayerNorm: CUDA tensors in a build without CUDA");
#endif
  }
  return AddAdaLayerNormReference(x, residual, table, t, eps);
}

torch::Tensor AddLayerNorm(const torch::Tensor& x, torch::Tensor& residual, const torch::Tensor& weight,
                           const torch::Tensor& bias, double eps) {
  if (residual.is_cuda()) {
#ifdef VQD_WITH_CUDA
    return cuda::AddNorm(x, residual, weight, bias, {}, eps,
                         weight.defined() || bias.defined() ? NormModulation::kAffine : NormModulation::kNone);
#else
    TORCH_CHECK(false, "AddLayerNorm: CUDA tensors in a build without CUDA");
#endif
  }
  return AddLayerNormReference(x, residual, weight, bias, eps);
}

}  // namespace vqd::nn::kernels
