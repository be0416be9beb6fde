#include "nn/attention_kernel.h"

#include <cmath>

#include <torch/version.h>

namespace vqd::nn {

torch::Tensor ScaledDotProductAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        bool causal) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/causal);
#else
  // The reference's legacy AttnProcessor: baddbmm with alpha = d^-0.5, softmax in the input dtype, bmm.
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) * scale;  // [B, H, Sq, Sk]
  if (causal) {
    const int64_t sq = q.size(-2), sk = k.size(-2);
    torch::Tensor mask = torch::ones({sq, sk}, torch::TensorOptions().dtype(torch::kBool).device(q.device()))
                             .triu(/*diagonal=*/1);
    scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
  }
  return torch::matmul(scores.softmax(-1), v);
#endif
}

torch::Tensor SplitHeads(const torch::Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
}

torch::Tensor MergeHeads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

}  // namespace vqd::nn
