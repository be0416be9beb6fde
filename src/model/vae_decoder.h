// Ref: diffusers/models/autoencoders/vae.py Decoder (no latent conditioning: norm_type "group").
#pragma once

#include <vector>

#include <torch/torch.h>

#include "model/vae_blocks.h"
#include "model/vq_model_config.h"

namespace vqd::model {

class VaeDecoderImpl : public torch::nn::Module {
 public:
  VaeDecoderImpl(const VqModelConfig& config, const nn::TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& latents);  // [B, latent, h, w] -> [B, 3, h*f, w*f], about [-1, 1]

  nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  MidBlock2D mid_block{nullptr};
  nn::GroupNorm conv_norm_out{nullptr};

 private:
  std::vector<EncoderDecoderBlock> up_blocks_;
};
TORCH_MODULE(VaeDecoder);

}  // namespace vqd::model
