#include "model/class_transformer.h"

namespace vqd::model {

ConvFeedForwardImpl::ConvFeedForwardImpl(int64_t dim, int64_t mult, int64_t height, int64_t width,
                                         const nn::TensorPlacement& placement)
    : height_(height), width_(width) {
  conv1 = register_module("conv1", nn::Conv2d(dim, mult * dim, 3, 1, 1, placement));
  conv2 = register_module("conv2", nn::Conv2d(mult * dim, dim, 3, 1, 1, placement));
}

torch::Tensor ConvFeedForwardImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), d = x.size(2);
  torch::Tensor grid = x.transpose(1, 2).reshape({b, d, height_, width_});  // 'b (h w) c -> b c h w'
  grid = conv2(nn::QuickGelu(conv1(grid)));
  return grid.flatten(2).transpose(1, 2);  // 'b c h w -> b (h w) c'
}

ClassTransformerBlockImpl::ClassTransformerBlockImpl(const ClassTransformerConfig& c,
                                                     const nn::TensorPlacement& placement) {
  const int64_t dim = c.inner_dim();
  norm1 = register_module("norm1", AdaLayerNorm(dim, c.num_embeds_ada_norm, c.norm_eps, placement));
  attn1 = register_module("attn1", Attention(dim, dim, c.num_attention_heads, c.attention_head_dim,
                                             /*bias=*/true, placement));
  norm_class = register_module("norm_class", AdaLayerNorm(dim, c.num_embeds_class, c.norm_eps, placement,
                                                          /*mean_fallback=*/true));
  ff = register_module("ff", ConvFeedForward(dim, c.ff_mult, c.latent_height, c.latent_width, placement));
}

torch::Tensor ClassTransformerBlockImpl::forward(torch::Tensor h, const torch::Tensor& timesteps,
                                                 const torch::Tensor& labels) {
  h = h + attn1(norm1(h, timesteps));
  return h + ff(norm_class(h, labels));
}

ClassTransformerImpl::ClassTransformerImpl(const ClassTransformerConfig& c, const nn::TensorPlacement& placement)
    : config_(c) {
  const int64_t dim = c.inner_dim();
  latent_image_embedding = register_module(
      "latent_image_embedding",
      ImagePositionalEmbeddings(c.num_vector_embeds, c.pos_embed_height, c.pos_embed_width, dim, placement));
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    blocks_.push_back(ClassTransformerBlock(c, placement));
    transformer_blocks->push_back(blocks_.back());
  }
  norm_out = register_module("norm_out", nn::LayerNorm(dim, c.norm_eps, /*elementwise_affine=*/true, placement));
  out = register_module("out", nn::Linear(dim, c.num_codes(), /*bias=*/true, placement));
}

void ClassTransformerImpl::PrepareForInference() {
  for (auto& block : blocks_) {
    block->norm1->Tabulate();
    block->norm_class->Tabulate();
  }
}

torch::Tensor ClassTransformerImpl::forward(const torch::Tensor& tokens, const torch::Tensor& timesteps,
                                            const torch::Tensor& labels) {
  TORCH_CHECK(tokens.size(1) == config_.num_latent_pixels(), "class transformer: ", tokens.size(1),
              " tokens per sample, the grid has ", config_.num_latent_pixels());
  torch::Tensor h = latent_image_embedding(tokens);  // [B, N, D]
  for (auto& block : blocks_) h = block(h, timesteps, labels);
  return LogProbsFromLogits(out(norm_out(h)));
}

}  // namespace vqd::model
