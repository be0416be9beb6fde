// Parameter-holding primitives (Linear, Conv2d, norms, Embedding) built for loading, not training:
// parameters are allocated empty on the target device and dtype (no random initialisation, which
// would cost seconds for 1.4 B parameters) and are registered under PyTorch's names ("weight",
// "bias") so that a module tree's named_parameters() yields diffusers' state_dict keys.
#pragma once

#include <torch/torch.h>

namespace vqd::nn {

// Where and in what precision a module tree's parameters live.
struct TensorPlacement {
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;
  torch::TensorOptions options() const { return torch::TensorOptions().device(device).dtype(dtype); }
};

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias, const TensorPlacement& placement);
  // Over existing storage (e.g. slices of a fused projection): loading weights by name fills it.
  LinearImpl(torch::Tensor weight, torch::Tensor bias);
  torch::Tensor forward(const torch::Tensor& x);  // [..., in] -> [..., out]

  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out] or undefined
};
TORCH_MODULE(Linear);

class Conv2dImpl : public torch::nn::Module {
 public:
  Conv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride, int64_t padding,
             const TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C_in, H, W] -> [B, C_out, H', W']

  torch::Tensor weight;  // [out, in, k, k]
  torch::Tensor bias;    // [out]

 private:
  int64_t stride_;
  int64_t padding_;
};
TORCH_MODULE(Conv2d);

class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, double eps, bool elementwise_affine, const TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& x);
  double eps() const { return eps_; }

  torch::Tensor weight;  // [dim] or undefined without affine
  torch::Tensor bias;

 private:
  int64_t dim_;
  double eps_;
};
TORCH_MODULE(LayerNorm);

class GroupNormImpl : public torch::nn::Module {
 public:
  GroupNormImpl(int64_t num_groups, int64_t num_channels, double eps, const TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, ...]

  torch::Tensor weight;
  torch::Tensor bias;

 private:
  int64_t num_groups_;
  double eps_;
};
TORCH_MODULE(GroupNorm);

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t num_embeddings, int64_t dim, const TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& indices);  // [...] int64 -> [..., dim]

  torch::Tensor weight;  // [num_embeddings, dim]
};
TORCH_MODULE(Embedding);

// x * sigmoid(1.702 x): CLIP's quick_gelu and diffusers' ApproximateGELU ("geglu-approximate").
torch::Tensor QuickGelu(const torch::Tensor& x);

}  // namespace vqd::nn
