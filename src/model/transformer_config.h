// The discrete ("vectorized") Transformer2DModel's config.json, as diffusers reads it.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "io/json_config.h"

namespace vqd::model {

struct Transformer2DConfig {
  int64_t num_attention_heads = 16;
  int64_t attention_head_dim = 88;
  int64_t num_layers = 36;
  int64_t num_vector_embeds = 4097;  // codebook size + 1 (the mask token, the last class)
  int64_t sample_size = 32;          // the latent grid is sample_size x sample_size
  int64_t cross_attention_dim = 512;
  int64_t num_embeds_ada_norm = 100;  // timestep embeddings = diffusion steps of the schedule
  bool attention_bias = true;
  double norm_eps = 1e-5;
  bool norm_elementwise_affine = true;

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  int64_t num_classes() const { return num_vector_embeds - 1; }  // the mask is never predicted
  int64_t num_latent_pixels() const { return sample_size * sample_size; }

  // Reads the keys above; rejects configs of other Transformer2DModel variants (continuous
  // input, patches, other activations or norms) with a message naming the key.
  static absl::StatusOr<Transformer2DConfig> FromJson(const io::JsonConfig& json);
  // The keys of a config.json diffusers would write for this config.
  nlohmann::json ToJson() const;
};

}  // namespace vqd::model
