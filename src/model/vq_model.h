// Ref: diffusers/models/autoencoders/vq_model.py VQModel: the VQ-VAE that turns token grids into
// images (decode) and images into token grids (encode, for editing and inpainting).
#pragma once

#include <string>

#include <torch/torch.h>

#include "model/vae_decoder.h"
#include "model/vae_encoder.h"
#include "model/vector_quantizer.h"
#include "model/vq_model_config.h"

namespace vqd::model {

class VqModelImpl : public torch::nn::Module {
 public:
  VqModelImpl(const VqModelConfig& config, const nn::TensorPlacement& placement);

  // Codebook vectors of a token grid: [B, h*w] -> [B, vq_embed_dim, h, w].
  torch::Tensor Lookup(const torch::Tensor& tokens, int64_t height, int64_t width) {
    return quantize->Lookup(tokens, height, width);
  }
  // decode(z, force_not_quantize=True): post_quant_conv then the decoder; about [-1, 1].
  torch::Tensor Decode(const torch::Tensor& codebook_vectors);
  // encode(x).latents: encoder then quant_conv, [B, vq_embed_dim, h, w].
  torch::Tensor EncodeLatents(const torch::Tensor& image);
  // Image [B, 3, H, W] in [-1, 1] -> token grid [B, h*w].
  torch::Tensor EncodeTokens(const torch::Tensor& image) { return quantize->Encode(EncodeLatents(image)); }

  const VqModelConfig& config() const { return config_; }

  VaeEncoder encoder{nullptr};
  VaeDecoder decoder{nullptr};
  nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};
  VectorQuantizer quantize{nullptr};

 private:
  VqModelConfig config_;
};
TORCH_MODULE(VqModel);

// Maps the legacy VAE attention names of 2022-era checkpoints (query, key, value, proj_attn) to
// the current ones (to_q, to_k, to_v, to_out.0); other keys pass through.
std::string RenameLegacyVaeKey(const std::string& key);

}  // namespace vqd::model
