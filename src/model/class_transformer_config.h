// class_transformer/config.json: the class-conditional transformer of the official ImageNet
// checkpoints (Condition2ImageTransformer), in the style of diffusers' Transformer2DModel config.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "io/json_config.h"

namespace vqd::model {

struct ClassTransformerConfig {
  int64_t num_layers = 24;
  int64_t num_attention_heads = 16;
  int64_t attention_head_dim = 32;
  int64_t num_vector_embeds = 975;  // codebook size + 1 (the mask token, the last class)
  // The positional tables. The official ImageNet model declares 32 x 32 tables for its 16 x 16 grid
  // and uses their first 256 entries in raster order (rows 0..7), which these reproduce.
  int64_t pos_embed_height = 32, pos_embed_width = 32;
  int64_t latent_height = 16, latent_width = 16;  // the token grid the feed-forward convolves over
  int64_t num_embeds_ada_norm = 100;  // timestep embeddings
  int64_t num_embeds_class = 1000;    // rows of each block's class table (1001 for imagenet_learnable)
  int64_t num_classes = 1000;         // labels a request may ask for: [0, num_classes)
  // The label of the unconditional branch of guidance (the official code hard-codes 1000). "row":
  // it indexes a learned row of the class tables; "mean": it lies beyond them and stands for the
  // mean of their rows.
  int64_t null_class_id = 1000;
  std::string null_class_mode = "mean";
  int64_t ff_mult = 4;         // the 3x3 convolutional feed-forward's width multiple
  double norm_eps = 1e-5;

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  int64_t num_codes() const { return num_vector_embeds - 1; }  // the mask is never predicted
  int64_t num_latent_pixels() const { return latent_height * latent_width; }

  // Reads and checks the keys above (the message names the key at fault).
  static absl::StatusOr<ClassTransformerConfig> FromJson(const io::JsonConfig& json);
  nlohmann::json ToJson() const;
};

}  // namespace vqd::model
