// Ref: microsoft/VQ-Diffusion Condition2ImageTransformer with 'selfcondition' blocks (the ImageNet
// checkpoints), with diffusers-style names: each block is timestep AdaLN -> self-attention, then
// class AdaLN -> a 3x3 convolutional feed-forward over the token grid; no cross-attention.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "model/attention.h"
#include "model/class_transformer_config.h"
#include "model/transformer_2d.h"
#include "model/transformer_block.h"
#include "nn/layers.h"

namespace vqd::model {

// conv1 (3x3, D -> mult * D) -> quick GELU -> conv2 (3x3, back to D) over the h x w token grid.
class ConvFeedForwardImpl : public torch::nn::Module {
 public:
  ConvFeedForwardImpl(int64_t dim, int64_t mult, int64_t height, int64_t width, const nn::TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& x);  // [B, h*w, D]

  nn::Conv2d conv1{nullptr}, conv2{nullptr};

 private:
  int64_t height_, width_;
};
TORCH_MODULE(ConvFeedForward);

class ClassTransformerBlockImpl : public torch::nn::Module {
 public:
  ClassTransformerBlockImpl(const ClassTransformerConfig& config, const nn::TensorPlacement& placement);
  // h [B, N, D], timesteps [B], labels [B] (a label beyond the class table means its mean row).
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& timesteps, const torch::Tensor& labels);

  AdaLayerNorm norm1{nullptr}, norm_class{nullptr};
  Attention attn1{nullptr};
  ConvFeedForward ff{nullptr};
};
TORCH_MODULE(ClassTransformerBlock);

class ClassTransformerImpl : public torch::nn::Module {
 public:
  ClassTransformerImpl(const ClassTransformerConfig& config, const nn::TensorPlacement& placement);

  // tokens [B, N] int64 (mask = num_vector_embeds - 1), timesteps [B], labels [B] int64 ->
  // log p(x_0 | x_t) as float32 [B, K, N] (log-softmax in float64, as the official code does).
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& timesteps, const torch::Tensor& labels);

  // Call once the weights are loaded (tabulates the timestep and class modulations).
  void PrepareForInference();

  const ClassTransformerConfig& config() const { return config_; }

  ImagePositionalEmbeddings latent_image_embedding{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};
  nn::LayerNorm norm_out{nullptr};
  nn::Linear out{nullptr};

 private:
  ClassTransformerConfig config_;
  std::vector<ClassTransformerBlock> blocks_;
};
TORCH_MODULE(ClassTransformer);

}  // namespace vqd::model
