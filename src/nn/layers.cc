#include "nn/layers.h"

namespace vqd::nn {

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool with_bias,
                       const TensorPlacement& placement) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}, placement.options()),
                              /*requires_grad=*/false);
  if (with_bias) {
    bias = register_parameter("bias", torch::empty({out_features}, placement.options()), false);
  }
}

LinearImpl::LinearImpl(torch::Tensor weight_view, torch::Tensor bias_view) {
  weight = register_parameter("weight", std::move(weight_view), /*requires_grad=*/false);
  if (bias_view.defined()) bias = register_parameter("bias", std::move(bias_view), false);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) { return torch::linear(x, weight, bias); }

Conv2dImpl::Conv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride,
                       int64_t padding, const TensorPlacement& placement)
    : stride_(stride), padding_(padding) {
  weight = register_parameter(
      "weight", torch::empty({out_channels, in_channels, kernel_size, kernel_size}, placement.options()), false);
  bias = register_parameter("bias", torch::empty({out_channels}, placement.options()), false);
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  return torch::conv2d(x, weight, bias, {stride_, stride_}, {padding_, padding_});
}

LayerNormImpl::LayerNormImpl(int64_t dim, double eps, bool elementwise_affine, const TensorPlacement& placement)
    : dim_(dim), eps_(eps) {
  if (elementwise_affine) {
    weight = register_parameter("weight", torch::empty({dim}, placement.options()), false);
    bias = register_parameter("bias", torch::empty({dim}, placement.options()), false);
  }
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x, {dim_}, weight, bias, eps_);
}

GroupNormImpl::GroupNormImpl(int64_t num_groups, int64_t num_channels, double eps,
                             const TensorPlacement& placement)
    : num_groups_(num_groups), eps_(eps) {
  weight = register_parameter("weight", torch::empty({num_channels}, placement.options()), false);
  bias = register_parameter("bias", torch::empty({num_channels}, placement.options()), false);
}

torch::Tensor GroupNormImpl::forward(const torch::Tensor& x) {
  return torch::group_norm(x, num_groups_, weight, bias, eps_);
}

EmbeddingImpl::EmbeddingImpl(int64_t num_embeddings, int64_t dim, const TensorPlacement& placement) {
  weight = register_parameter("weight", torch::empty({num_embeddings, dim}, placement.options()), false);
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& indices) { return torch::embedding(weight, indices); }

torch::Tensor QuickGelu(const torch::Tensor& x) { return x * torch::sigmoid(1.702 * x); }

}  // namespace vqd::nn
