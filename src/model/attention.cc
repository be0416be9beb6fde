#include "model/attention.h"

#include "nn/attention_kernel.h"

namespace vqd::model {

AttentionImpl::AttentionImpl(int64_t query_dim, int64_t context_dim, int64_t heads, int64_t dim_head, bool bias,
                             const nn::TensorPlacement& placement)
    : heads_(heads) {
  const int64_t inner = heads * dim_head;
  if (context_dim == query_dim) {
    qkv_weight_ = torch::empty({3 * inner, query_dim}, placement.options());
    if (bias) qkv_bias_ = torch::empty({3 * inner}, placement.options());
    auto slice = [&](int64_t i) {
      return nn::Linear(qkv_weight_.narrow(0, i * inner, inner),
                        bias ? qkv_bias_.narrow(0, i * inner, inner) : torch::Tensor());
    };
    to_q = register_module("to_q", slice(0));
    to_k = register_module("to_k", slice(1));
    to_v = register_module("to_v", slice(2));
  } else {
    to_q = register_module("to_q", nn::Linear(query_dim, inner, bias, placement));
    to_k = register_module("to_k", nn::Linear(context_dim, inner, bias, placement));
    to_v = register_module("to_v", nn::Linear(context_dim, inner, bias, placement));
  }
  out_proj_ = nn::Linear(inner, query_dim, /*bias=*/true, placement);
  to_out = register_module("to_out", torch::nn::ModuleList(out_proj_));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  if (!qkv_weight_.defined()) return Attend(x, to_k(x), to_v(x));
  std::vector<torch::Tensor> qkv = torch::linear(x, qkv_weight_, qkv_bias_).chunk(3, /*dim=*/-1);
  return AttendProjected(qkv[0], qkv[1], qkv[2], x.scalar_type());
}

torch::Tensor AttentionImpl::Attend(const torch::Tensor& x, const torch::Tensor& key, const torch::Tensor& value) {
  return AttendProjected(to_q(x), key, value, x.scalar_type());
}

torch::Tensor AttentionImpl::AttendProjected(const torch::Tensor& query, const torch::Tensor& key,
                                             const torch::Tensor& value, torch::Dtype dtype) {
  torch::Tensor q = nn::SplitHeads(query, heads_);  // [B, H, Sq, d]
  torch::Tensor k = nn::SplitHeads(key, heads_);    // [B, H, Sk, d]
  torch::Tensor v = nn::SplitHeads(value, heads_);
  torch::Tensor out = nn::MergeHeads(nn::ScaledDotProductAttention(q, k, v));  // [B, Sq, inner]
  return out_proj_(out.to(dtype));
}

}  // namespace vqd::model
