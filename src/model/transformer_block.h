// Ref: diffusers/models/attention.py BasicTransformerBlock (norm_type "ada_norm") and
// models/normalization.py AdaLayerNorm, for the discrete VQ-Diffusion transformer.
#pragma once

#include <torch/torch.h>

#include "model/attention.h"
#include "model/transformer_config.h"
#include "nn/layers.h"

namespace vqd::model {

// LayerNorm (no affine) modulated by a timestep: y = LN(x) * (1 + scale[t]) + shift[t], with
// [scale, shift] = linear(SiLU(emb[t])). Each sample of a batch may be at its own timestep.
// With `mean_fallback` (the official class AdaLN of the ImageNet models), an index beyond the
// table stands for the mean of its rows: the official code's unconditional class without a row of
// its own. The official code lets the batch's first index decide for every sample; here each
// sample decides for itself, so that conditional and unconditional rows can share a batch.
class AdaLayerNormImpl : public torch::nn::Module {
 public:
  AdaLayerNormImpl(int64_t dim, int64_t num_embeddings, double eps, const nn::TensorPlacement& placement,
                   bool mean_fallback = false);

  // x [B, N, D], timesteps (or class labels) [B] int64 on x's device.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& timesteps);

  // Tabulates linear(SiLU(emb[t])) for every t once the weights are loaded. Besides saving the
  // work at every step, the table makes a sample's modulation independent of the batch it is in
  // (a GEMM over a different number of rows may round differently).
  void Tabulate();
  const torch::Tensor& table() const { return table_; }  // undefined before Tabulate()
  double eps() const { return eps_; }

  nn::Embedding emb{nullptr};
  nn::Linear linear{nullptr};

 private:
  // linear(SiLU(rows)) for the table's rows, and the mean row last with mean_fallback.
  torch::Tensor Modulations();

  int64_t dim_;
  int64_t num_embeddings_;
  double eps_;
  bool mean_fallback_;
  torch::Tensor table_;  // [num_embeddings (+ 1), 2D]: scale then shift
};
TORCH_MODULE(AdaLayerNorm);

// FeedForward with ApproximateGELU: net.0.proj (D -> 4D), quick GELU, net.1 Dropout(0), net.2 (4D -> D).
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, const nn::TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& x);
  // The same with the up-projection's bias and the GELU fused into one pass (fast path).
  torch::Tensor ForwardFused(const torch::Tensor& x);

 private:
  nn::Linear proj_{nullptr}, out_{nullptr};
};
TORCH_MODULE(FeedForward);

// Cross-attention keys and values of one block, projected from the text context once per request.
struct CrossAttentionKV {
  torch::Tensor key;    // [B, 77, inner]
  torch::Tensor value;  // [B, 77, inner]
};

class TransformerBlockImpl : public torch::nn::Module {
 public:
  TransformerBlockImpl(const Transformer2DConfig& config, const nn::TensorPlacement& placement);

  // h [B, N, D], timesteps [B], context: this block's projected text keys and values for the B rows.
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& timesteps, const CrossAttentionKV& context);
  // The fast path's block: `residual` (h) is updated in place; `pending` (the previous block's
  // feed-forward output, or undefined) is added to it by the first norm's kernel, and the block
  // returns its own feed-forward output for the next one to add. Needs Tabulate()d AdaLayerNorms.
  torch::Tensor ForwardFused(torch::Tensor& residual, const torch::Tensor& pending, const torch::Tensor& timesteps,
                             const CrossAttentionKV& context);
  CrossAttentionKV ProjectContext(const torch::Tensor& encoder_hidden_states);  // [B, 77, C]

  AdaLayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};
  nn::LayerNorm norm3{nullptr};
  FeedForward ff{nullptr};
};
TORCH_MODULE(TransformerBlock);

}  // namespace vqd::model
