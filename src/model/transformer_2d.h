// Ref: diffusers/models/transformers/transformer_2d.py, Transformer2DModel with discrete input
// (num_vector_embeds), and models/embeddings.py ImagePositionalEmbeddings.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "model/transformer_block.h"
#include "model/transformer_config.h"
#include "nn/layers.h"

namespace vqd::model {

// Token embedding plus separate row and column position embeddings (latent_image_embedding.*).
class ImagePositionalEmbeddingsImpl : public torch::nn::Module {
 public:
  ImagePositionalEmbeddingsImpl(int64_t num_embed, int64_t height, int64_t width, int64_t dim,
                                const nn::TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& tokens);  // [B, N] int64 -> [B, N, D]

  nn::Embedding emb{nullptr}, height_emb{nullptr}, width_emb{nullptr};

 private:
  int64_t height_, width_;
};
TORCH_MODULE(ImagePositionalEmbeddings);

// The text context of a batch, projected to keys and values for each block's cross-attention.
using TextContext = std::vector<CrossAttentionKV>;  // one per block

class Transformer2DModelImpl : public torch::nn::Module {
 public:
  Transformer2DModelImpl(const Transformer2DConfig& config, const nn::TensorPlacement& placement);

  // Per-block keys and values of encoder_hidden_states [B, 77, C]. A request computes this once
  // and reuses it at every step.
  TextContext ProjectContext(const torch::Tensor& encoder_hidden_states);

  // tokens [B, N] int64 (mask = num_vector_embeds - 1), timesteps [B] int64 (each sample its own),
  // context for the same B rows -> log p(x_0 | x_t) as float32 [B, num_classes, N].
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& timesteps, const TextContext& context);
  // The same from encoder_hidden_states [B, 77, C], as diffusers' forward takes them.
  torch::Tensor ForwardFromHiddenStates(const torch::Tensor& tokens, const torch::Tensor& timesteps,
                                        const torch::Tensor& encoder_hidden_states) {
    return forward(tokens, timesteps, ProjectContext(encoder_hidden_states));
  }

  // Call once the weights are loaded (precomputes the timestep modulation tables).
  void PrepareForInference();

  const Transformer2DConfig& config() const { return config_; }

  ImagePositionalEmbeddings latent_image_embedding{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};
  nn::LayerNorm norm_out{nullptr};
  nn::Linear out{nullptr};

 private:
  Transformer2DConfig config_;
  std::vector<TransformerBlock> blocks_;  // typed views of transformer_blocks
};
TORCH_MODULE(Transformer2DModel);

}  // namespace vqd::model
