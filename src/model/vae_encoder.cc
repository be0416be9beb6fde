#include "model/vae_encoder.h"

namespace vqd::model {

VaeEncoderImpl::VaeEncoderImpl(const VqModelConfig& c, const nn::TensorPlacement& placement) {
  const auto& ch = c.block_out_channels;
  conv_in = register_module("conv_in", nn::Conv2d(c.in_channels, ch[0], 3, 1, 1, placement));
  auto down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t out = ch[0];
  for (size_t i = 0; i < ch.size(); ++i) {
    const int64_t in = out;
    out = ch[i];
    const bool last = i + 1 == ch.size();
    down_blocks_.push_back(EncoderDecoderBlock(
        in, out, c.layers_per_block, c.norm_num_groups, c.down_block_types[i] == "AttnDownEncoderBlock2D",
        last ? EncoderDecoderBlockImpl::Resample::kNone : EncoderDecoderBlockImpl::Resample::kDown, placement));
    down_blocks->push_back(down_blocks_.back());
  }
  mid_block = register_module("mid_block", MidBlock2D(ch.back(), c.norm_num_groups, c.mid_block_add_attention, placement));
  conv_norm_out = register_module("conv_norm_out", nn::GroupNorm(c.norm_num_groups, ch.back(), 1e-6, placement));
  conv_out = register_module("conv_out", nn::Conv2d(ch.back(), c.latent_channels, 3, 1, 1, placement));
}

torch::Tensor VaeEncoderImpl::forward(const torch::Tensor& image) {
  torch::Tensor x = conv_in(image);
  for (auto& block : down_blocks_) x = block(x);
  x = mid_block(x);
  return conv_out(torch::silu(conv_norm_out(x)));
}

}  // namespace vqd::model
