// Ref: diffusers/models/autoencoders/vae.py Encoder (double_z=False, as VQModel builds it).
#pragma once

#include <vector>

#include <torch/torch.h>

#include "model/vae_blocks.h"
#include "model/vq_model_config.h"

namespace vqd::model {

class VaeEncoderImpl : public torch::nn::Module {
 public:
  VaeEncoderImpl(const VqModelConfig& config, const nn::TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& image);  // [B, 3, H, W] in [-1, 1] -> [B, latent, H/f, W/f]

  nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  MidBlock2D mid_block{nullptr};
  nn::GroupNorm conv_norm_out{nullptr};

 private:
  std::vector<EncoderDecoderBlock> down_blocks_;
};
TORCH_MODULE(VaeEncoder);

}  // namespace vqd::model
