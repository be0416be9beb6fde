#include "transformer_flops.h"

namespace vqd::bench {

double TransformerFlopsPerRow(const model::Transformer2DConfig& c, int64_t text_tokens) {
  const double n = static_cast<double>(c.num_latent_pixels());
  const double d = static_cast<double>(c.inner_dim());
  const double ctx = static_cast<double>(c.cross_attention_dim);
  const double t = static_cast<double>(text_tokens);
  const double self_attention = 2 * n * d * d * 3 + 2 * 2 * n * n * d + 2 * n * d * d;
  const double cross_attention = 2 * n * d * d + 2 * 2 * t * ctx * d + 2 * 2 * n * t * d + 2 * n * d * d;
  const double feed_forward = 2 * 2 * n * d * (4 * d);
  const double head = 2 * n * d * static_cast<double>(c.num_classes());
  return static_cast<double>(c.num_layers) * (self_attention + cross_attention + feed_forward) + head;
}

}  // namespace vqd::bench
