#include "model/transformer_2d.h"

#include "nn/kernels/add_layer_norm.h"
#include "nn/kernels/log_softmax.h"

namespace vqd::model {

ImagePositionalEmbeddingsImpl::ImagePositionalEmbeddingsImpl(int64_t num_embed, int64_t height, int64_t width,
                                                             int64_t dim, const nn::TensorPlacement& placement)
    : height_(height), width_(width) {
  emb = register_module("emb", nn::Embedding(num_embed, dim, placement));
  height_emb = register_module("height_emb", nn::Embedding(height, dim, placement));
  width_emb = register_module("width_emb", nn::Embedding(width, dim, placement));
}

torch::Tensor ImagePositionalEmbeddingsImpl::forward(const torch::Tensor& tokens) {
  torch::Tensor x = emb(tokens);                                         // [B, N, D]
  torch::Tensor h = height_emb->weight.view({1, height_, 1, -1});        // [1, H, 1, D]
  torch::Tensor w = width_emb->weight.view({1, 1, width_, -1});          // [1, 1, W, D]
  torch::Tensor pos = (h + w).view({1, height_ * width_, -1});           // [1, H*W, D]
  return x + pos.narrow(1, 0, tokens.size(1));
}

Transformer2DModelImpl::Transformer2DModelImpl(const Transformer2DConfig& config,
                                               const nn::TensorPlacement& placement)
    : config_(config) {
  const int64_t dim = config.inner_dim();
  latent_image_embedding = register_module(
      "latent_image_embedding",
      ImagePositionalEmbeddings(config.num_vector_embeds, config.sample_size, config.sample_size, dim, placement));
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) {
    blocks_.push_back(TransformerBlock(config, placement));
    transformer_blocks->push_back(blocks_.back());
  }
  norm_out = register_module("norm_out", nn::LayerNorm(dim, 1e-5, /*elementwise_affine=*/true, placement));
  out = register_module("out", nn::Linear(dim, config.num_classes(), /*bias=*/true, placement));
}

void Transformer2DModelImpl::PrepareForInference() {
  for (auto& block : blocks_) {
    block->norm1->Tabulate();
    block->norm2->Tabulate();
  }
}

TextContext Transformer2DModelImpl::ProjectContext(const torch::Tensor& encoder_hidden_states) {
  TextContext context;
  context.reserve(blocks_.size());
  for (auto& block : blocks_) context.push_back(block->ProjectContext(encoder_hidden_states));
  return context;
}

RowContext RowContext::PerRow(const TextContext& context) {
  RowContext c;
  c.per_row_ = &context;
  return c;
}

RowContext RowContext::Gathered(const ContextSlots& slots, const torch::Tensor& row_slot) {
  RowContext c;
  c.slots_ = &slots;
  c.row_slot_ = row_slot;
  return c;
}

size_t RowContext::num_blocks() const { return per_row_ != nullptr ? per_row_->size() : slots_->key.size(); }

CrossAttentionKV RowContext::Block(size_t index) const {
  if (per_row_ != nullptr) return (*per_row_)[index];
  return {slots_->key[index].index_select(0, row_slot_), slots_->value[index].index_select(0, row_slot_)};
}

torch::Tensor Transformer2DModelImpl::forward(const torch::Tensor& tokens, const torch::Tensor& timesteps,
                                              const TextContext& context) {
  return fused_ ? ForwardFused(tokens, timesteps, RowContext::PerRow(context))
                : ForwardReference(tokens, timesteps, context);
}

torch::Tensor Transformer2DModelImpl::ForwardFused(const torch::Tensor& tokens, const torch::Tensor& timesteps,
                                                   const RowContext& context, torch::Tensor log_probs_out) {
  TORCH_CHECK(context.num_blocks() == blocks_.size(), "text context has ", context.num_blocks(), " blocks, model has ",
              blocks_.size());
  torch::Tensor h = latent_image_embedding(tokens);  // [B, N, D]: the residual stream, updated in place
  torch::Tensor pending;                             // the last block's feed-forward output, not yet added
  for (size_t i = 0; i < blocks_.size(); ++i) pending = blocks_[i]->ForwardFused(h, pending, timesteps, context.Block(i));
  torch::Tensor y = nn::kernels::AddLayerNorm(pending, h, norm_out->weight, norm_out->bias, norm_out->eps());
  return nn::kernels::LogSoftmaxClasses(out(y), log_probs_out).permute({0, 2, 1});
}

torch::Tensor Transformer2DModelImpl::ForwardReference(const torch::Tensor& tokens, const torch::Tensor& timesteps,
                                                       const TextContext& context) {
  TORCH_CHECK(context.size() == blocks_.size(), "text context has ", context.size(), " blocks, model has ",
              blocks_.size());
  torch::Tensor h = latent_image_embedding(tokens);  // [B, N, D]
  for (size_t i = 0; i < blocks_.size(); ++i) h = blocks_[i](h, timesteps, context[i]);
  return LogProbsFromLogits(out(norm_out(h)));
}

torch::Tensor LogProbsFromLogits(const torch::Tensor& logits) {
  return torch::log_softmax(logits.permute({0, 2, 1}).to(torch::kFloat64), 1).to(torch::kFloat32);
}

}  // namespace vqd::model
