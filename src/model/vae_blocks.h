// Ref: diffusers/models/resnet.py (ResnetBlock2D), upsampling.py / downsampling.py,
// unets/unet_2d_blocks.py (UNetMidBlock2D, [Attn]DownEncoderBlock2D, [Attn]UpDecoderBlock2D) and
// attention_processor.py (Attention with group_norm, the VAE's single-head spatial attention).
// The building blocks of the VQ-VAE encoder and decoder, in their temb-free form.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "nn/layers.h"

namespace vqd::model {

// GroupNorm(eps 1e-6) -> SiLU -> conv3x3, twice, plus a 1x1 shortcut when channels change.
class ResnetBlock2DImpl : public torch::nn::Module {
 public:
  ResnetBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t groups, const nn::TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C_in, H, W] -> [B, C_out, H, W]

  nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
};
TORCH_MODULE(ResnetBlock2D);

// Single-head self-attention over the H*W positions, with its own GroupNorm and a residual.
class SpatialAttentionImpl : public torch::nn::Module {
 public:
  SpatialAttentionImpl(int64_t channels, int64_t groups, const nn::TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, H, W]

  nn::GroupNorm group_norm{nullptr};
  nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};

 private:
  nn::Linear out_proj_{nullptr};  // registered as to_out.0
};
TORCH_MODULE(SpatialAttention);

// Nearest x2 then conv3x3 (upsamplers.0.conv).
class Upsample2DImpl : public torch::nn::Module {
 public:
  Upsample2DImpl(int64_t channels, const nn::TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& x);
  nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

// Zero pad right and bottom by one, then conv3x3 stride 2 (downsamplers.0.conv; padding=0 form).
class Downsample2DImpl : public torch::nn::Module {
 public:
  Downsample2DImpl(int64_t channels, const nn::TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& x);
  nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Downsample2D);

// resnets.0 -> (attentions.i -> resnets.i+1)...
class MidBlock2DImpl : public torch::nn::Module {
 public:
  MidBlock2DImpl(int64_t channels, int64_t groups, bool add_attention, const nn::TensorPlacement& placement);
  torch::Tensor forward(torch::Tensor x);

 private:
  std::vector<ResnetBlock2D> resnets_;
  std::vector<SpatialAttention> attentions_;
};
TORCH_MODULE(MidBlock2D);

// A down (encoder) or up (decoder) block: `num_layers` resnets, each followed by an attention
// when `with_attention`, then an optional resampler. Encoder and decoder blocks differ only in
// the resampler's direction and in the layer count the caller passes.
class EncoderDecoderBlockImpl : public torch::nn::Module {
 public:
  enum class Resample { kNone, kDown, kUp };
  EncoderDecoderBlockImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers, int64_t groups,
                          bool with_attention, Resample resample, const nn::TensorPlacement& placement);
  torch::Tensor forward(torch::Tensor x);

 private:
  std::vector<ResnetBlock2D> resnets_;
  std::vector<SpatialAttention> attentions_;
  Downsample2D downsample_{nullptr};
  Upsample2D upsample_{nullptr};
};
TORCH_MODULE(EncoderDecoderBlock);

}  // namespace vqd::model
