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

// logits [B, N, K] -> log-softmax over the classes as float32 [B, K, N], computed in float64 as
// diffusers and the official code do whatever the model dtype.
torch::Tensor LogProbsFromLogits(const torch::Tensor& logits);

// The text context of a batch, projected to keys and values for each block's cross-attention.
using TextContext = std::vector<CrossAttentionKV>;  // one per block

// Keys and values of several prompts side by side, one slot each: per block [S, 77, inner]. The
// fast path keeps them in fixed storage, so that a captured graph can gather any rows' context.
struct ContextSlots {
  std::vector<torch::Tensor> key, value;  // one per block
};

// Where a batch's rows find each block's cross-attention keys and values: per row (a TextContext
// of [R, 77, inner] tensors), or gathered from slots by each row's slot index (row_slot [R] int64).
class RowContext {
 public:
  static RowContext PerRow(const TextContext& context);
  static RowContext Gathered(const ContextSlots& slots, const torch::Tensor& row_slot);
  size_t num_blocks() const;
  CrossAttentionKV Block(size_t index) const;

 private:
  const TextContext* per_row_ = nullptr;
  const ContextSlots* slots_ = nullptr;
  torch::Tensor row_slot_;
};

class Transformer2DModelImpl : public torch::nn::Module {
 public:
  Transformer2DModelImpl(const Transformer2DConfig& config, const nn::TensorPlacement& placement);

  // Per-block keys and values of encoder_hidden_states [B, 77, C]. A request computes this once
  // and reuses it at every step.
  TextContext ProjectContext(const torch::Tensor& encoder_hidden_states);

  // tokens [B, N] int64 (mask = num_vector_embeds - 1), timesteps [B] int64 (each sample its own),
  // context for the same B rows -> log p(x_0 | x_t) as float32 [B, num_classes, N]. The fast path
  // (fused()) returns a token-major [B, N, num_classes] tensor viewed as [B, num_classes, N].
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& timesteps, const TextContext& context);
  // The fast path: the residual adds, norms and modulations, the feed-forward's bias and GELU and
  // the log-softmax fused (CUDA kernels; their libtorch references elsewhere), the log-softmax
  // token-major in float32. `log_probs_out` [B, N, num_classes] float32, when given, receives the
  // result (a static buffer for CUDA graphs). Returns the [B, num_classes, N] view.
  torch::Tensor ForwardFused(const torch::Tensor& tokens, const torch::Tensor& timesteps, const RowContext& context,
                             torch::Tensor log_probs_out = {});

  // Selects the fast path for forward() (PipelineOptions::fused); off: the reference path.
  void set_fused(bool fused) { fused_ = fused; }
  bool fused() const { return fused_; }
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
  torch::Tensor ForwardReference(const torch::Tensor& tokens, const torch::Tensor& timesteps,
                                 const TextContext& context);

  Transformer2DConfig config_;
  std::vector<TransformerBlock> blocks_;  // typed views of transformer_blocks
  bool fused_ = false;
};
TORCH_MODULE(Transformer2DModel);

}  // namespace vqd::model
