#include "model/vae_decoder.h"

namespace vqd::model {

VaeDecoderImpl::VaeDecoderImpl(const VqModelConfig& c, const nn::TensorPlacement& placement) {
  const std::vector<int64_t> reversed(c.block_out_channels.rbegin(), c.block_out_channels.rend());
  conv_in = register_module("conv_in", nn::Conv2d(c.latent_channels, reversed[0], 3, 1, 1, placement));
  mid_block = register_module("mid_block", MidBlock2D(reversed[0], c.norm_num_groups, c.mid_block_add_attention, placement));
  auto up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  int64_t out = reversed[0];
  for (size_t i = 0; i < reversed.size(); ++i) {
    const int64_t in = out;
    out = reversed[i];
    const bool last = i + 1 == reversed.size();
    up_blocks_.push_back(EncoderDecoderBlock(
        in, out, c.layers_per_block + 1, c.norm_num_groups, c.up_block_types[i] == "AttnUpDecoderBlock2D",
        last ? EncoderDecoderBlockImpl::Resample::kNone : EncoderDecoderBlockImpl::Resample::kUp, placement));
    up_blocks->push_back(up_blocks_.back());
  }
  conv_norm_out = register_module("conv_norm_out", nn::GroupNorm(c.norm_num_groups, reversed.back(), 1e-6, placement));
  conv_out = register_module("conv_out", nn::Conv2d(reversed.back(), c.out_channels, 3, 1, 1, placement));
}

torch::Tensor VaeDecoderImpl::forward(const torch::Tensor& latents) {
  torch::Tensor x = mid_block(conv_in(latents));
  for (auto& block : up_blocks_) x = block(x);
  return conv_out(torch::silu(conv_norm_out(x)));
}

}  // namespace vqd::model
