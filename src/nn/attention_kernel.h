// Scaled dot-product attention over [B, heads, S, d] tensors. On libtorch 2.x this is
// at::scaled_dot_product_attention (flash / memory-efficient kernels on CUDA), which is what
// diffusers and transformers call; libtorch 1.x lacks it and gets the exact math fallback.
#pragma once

#include <torch/torch.h>

namespace vqd::nn {

// q: [B, H, Sq, d], k and v: [B, H, Sk, d]. `causal` masks key positions after the query's.
torch::Tensor ScaledDotProductAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        bool causal = false);

// [B, S, H*d] -> [B, H, S, d] and back.
torch::Tensor SplitHeads(const torch::Tensor& x, int64_t heads);
torch::Tensor MergeHeads(const torch::Tensor& x);

}  // namespace vqd::nn
