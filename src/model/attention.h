// Ref: diffusers/models/attention_processor.py, Attention with AttnProcessor2_0 (no norms, no masks).
#pragma once

#include <torch/torch.h>

#include "nn/layers.h"

namespace vqd::model {

// Multi-head attention with diffusers' parameter names: to_q, to_k, to_v, to_out.0 (to_out.1 is
// a parameterless Dropout(0) in Python, so only index 0 exists here).
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t query_dim, int64_t context_dim, int64_t heads, int64_t dim_head, bool bias,
                const nn::TensorPlacement& placement);

  // Self-attention: x [B, S, query_dim]. Queries, keys and values come from one matrix product:
  // when query_dim == context_dim the three projections' weights are slices of one [3 * inner,
  // query_dim] tensor (still loaded by their own names), so there is nothing to fuse after loading.
  torch::Tensor forward(const torch::Tensor& x);
  // Attention over keys and values already projected by ProjectKey/ProjectValue: [B, Sk, inner].
  torch::Tensor Attend(const torch::Tensor& x, const torch::Tensor& key, const torch::Tensor& value);
  torch::Tensor ProjectKey(const torch::Tensor& context) { return to_k(context); }
  torch::Tensor ProjectValue(const torch::Tensor& context) { return to_v(context); }

  nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};

 private:
  torch::Tensor AttendProjected(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                                torch::Dtype dtype);

  int64_t heads_;
  torch::Tensor qkv_weight_, qkv_bias_;  // defined when to_q, to_k and to_v share storage
  nn::Linear out_proj_{nullptr};  // to_out[0], kept typed
};
TORCH_MODULE(Attention);

}  // namespace vqd::model
