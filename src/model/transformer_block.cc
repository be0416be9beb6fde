#include "model/transformer_block.h"

#include "nn/kernels/add_layer_norm.h"
#include "nn/kernels/bias_quick_gelu.h"

namespace vqd::model {

AdaLayerNormImpl::AdaLayerNormImpl(int64_t dim, int64_t num_embeddings, double eps,
                                   const nn::TensorPlacement& placement, bool mean_fallback)
    : dim_(dim), num_embeddings_(num_embeddings), eps_(eps), mean_fallback_(mean_fallback) {
  emb = register_module("emb", nn::Embedding(num_embeddings, dim, placement));
  linear = register_module("linear", nn::Linear(dim, 2 * dim, /*bias=*/true, placement));
}

torch::Tensor AdaLayerNormImpl::Modulations() {
  torch::Tensor rows = emb->weight;
  if (mean_fallback_) rows = torch::cat({rows, rows.mean(0, /*keepdim=*/true)}, 0);
  return linear(torch::silu(rows));
}

void AdaLayerNormImpl::Tabulate() {
  torch::NoGradGuard no_grad;
  table_ = Modulations();
}

torch::Tensor AdaLayerNormImpl::forward(const torch::Tensor& x, const torch::Tensor& timesteps) {
  // Beyond the table (mean_fallback): the mean row, the table's last.
  const torch::Tensor index = mean_fallback_ ? timesteps.clamp_max(num_embeddings_) : timesteps;
  if (table_.defined()) {
    torch::Tensor residual = x;  // nothing is added to it
    return nn::kernels::AddAdaLayerNormReference({}, residual, table_, index, eps_);
  }
  const torch::Tensor modulation =  // [B, 2D]
      mean_fallback_ ? Modulations().index_select(0, index) : linear(torch::silu(emb(timesteps)));
  torch::Tensor scale = modulation.narrow(1, 0, dim_).unsqueeze(1);    // [B, 1, D]
  torch::Tensor shift = modulation.narrow(1, dim_, dim_).unsqueeze(1);  // [B, 1, D]
  return torch::layer_norm(x, {dim_}, {}, {}, eps_) * (1 + scale) + shift;
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, const nn::TensorPlacement& placement) {
  const int64_t inner = 4 * dim;
  proj_ = nn::Linear(dim, inner, /*bias=*/true, placement);
  out_ = nn::Linear(inner, dim, /*bias=*/true, placement);
  // Python: net = [ApproximateGELU(proj), Dropout, Linear]; index 1 holds no weights.
  auto gelu = std::make_shared<torch::nn::Module>();
  gelu->register_module("proj", proj_);
  auto net = register_module("net", std::make_shared<torch::nn::Module>());
  net->register_module("0", gelu);
  net->register_module("2", out_);
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) { return out_(nn::QuickGelu(proj_(x))); }

torch::Tensor FeedForwardImpl::ForwardFused(const torch::Tensor& x) {
  return out_(nn::kernels::BiasQuickGeluInPlace(torch::linear(x, proj_->weight), proj_->bias));
}

TransformerBlockImpl::TransformerBlockImpl(const Transformer2DConfig& c, const nn::TensorPlacement& placement) {
  const int64_t dim = c.inner_dim();
  norm1 = register_module("norm1", AdaLayerNorm(dim, c.num_embeds_ada_norm, 1e-5, placement));
  attn1 = register_module("attn1", Attention(dim, dim, c.num_attention_heads, c.attention_head_dim,
                                             c.attention_bias, placement));
  norm2 = register_module("norm2", AdaLayerNorm(dim, c.num_embeds_ada_norm, 1e-5, placement));
  attn2 = register_module("attn2", Attention(dim, c.cross_attention_dim, c.num_attention_heads,
                                             c.attention_head_dim, c.attention_bias, placement));
  norm3 = register_module("norm3", nn::LayerNorm(dim, c.norm_eps, c.norm_elementwise_affine, placement));
  ff = register_module("ff", FeedForward(dim, placement));
}

CrossAttentionKV TransformerBlockImpl::ProjectContext(const torch::Tensor& encoder_hidden_states) {
  return {attn2->ProjectKey(encoder_hidden_states), attn2->ProjectValue(encoder_hidden_states)};
}

torch::Tensor TransformerBlockImpl::forward(torch::Tensor h, const torch::Tensor& timesteps,
                                            const CrossAttentionKV& context) {
  h = attn1(norm1(h, timesteps)) + h;
  h = attn2->Attend(norm2(h, timesteps), context.key, context.value) + h;
  h = ff(norm3(h)) + h;
  return h;
}

torch::Tensor TransformerBlockImpl::ForwardFused(torch::Tensor& residual, const torch::Tensor& pending,
                                                 const torch::Tensor& timesteps, const CrossAttentionKV& context) {
  TORCH_CHECK(norm1->table().defined() && norm2->table().defined(),
              "the fused transformer block needs its AdaLayerNorm tables (PrepareForInference)");
  torch::Tensor y = nn::kernels::AddAdaLayerNorm(pending, residual, norm1->table(), timesteps, norm1->eps());
  y = nn::kernels::AddAdaLayerNorm(attn1(y), residual, norm2->table(), timesteps, norm2->eps());
  y = nn::kernels::AddLayerNorm(attn2->Attend(y, context.key, context.value), residual, norm3->weight, norm3->bias,
                                norm3->eps());
  return ff->ForwardFused(y);
}

}  // namespace vqd::model
