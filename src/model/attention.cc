#include "model/attention.h"

#include "nn/attention_kernel.h"

namespace vqd::model {

AttentionImpl::AttentionImpl(int64_t query_dim, int64_t context_dim, int64_t heads, int64_t dim_head, bool bias,
                             const nn::TensorPlacement& placement)
    : heads_(heads) {
  const int64_t inner = heads * dim_head;
  to_q = register_module("to_q", nn::Linear(query_dim, inner, bias, placement));
  to_k = register_module("to_k", nn::Linear(context_dim, inner, bias, placement));
  to_v = register_module("to_v", nn::Linear(context_dim, inner, bias, placement));
  out_proj_ = nn::Linear(inner, query_dim, /*bias=*/true, placement);
  to_out = register_module("to_out", torch::nn::ModuleList(out_proj_));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) { return Attend(x, to_k(x), to_v(x)); }

torch::Tensor AttentionImpl::Attend(const torch::Tensor& x, const torch::Tensor& key, const torch::Tensor& value) {
  torch::Tensor q = nn::SplitHeads(to_q(x), heads_);  // [B, H, Sq, d]
  torch::Tensor k = nn::SplitHeads(key, heads_);      // [B, H, Sk, d]
  torch::Tensor v = nn::SplitHeads(value, heads_);
  torch::Tensor out = nn::MergeHeads(nn::ScaledDotProductAttention(q, k, v));  // [B, Sq, inner]
  return out_proj_(out.to(q.scalar_type()));
}

}  // namespace vqd::model
