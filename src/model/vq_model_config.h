// VQModel's config.json (diffusers/models/autoencoders/vq_model.py).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "io/json_config.h"

namespace vqd::model {

struct VqModelConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  std::vector<std::string> down_block_types;  // DownEncoderBlock2D | AttnDownEncoderBlock2D
  std::vector<std::string> up_block_types;    // UpDecoderBlock2D | AttnUpDecoderBlock2D
  std::vector<int64_t> block_out_channels;
  int64_t layers_per_block = 1;
  int64_t latent_channels = 3;
  int64_t num_vq_embeddings = 256;
  int64_t vq_embed_dim = 3;
  int64_t norm_num_groups = 32;
  bool mid_block_add_attention = true;
  int64_t sample_size = 32;

  // Image side / latent side.
  int64_t downsample_factor() const { return int64_t{1} << (block_out_channels.size() - 1); }

  static absl::StatusOr<VqModelConfig> FromJson(const io::JsonConfig& json);
  nlohmann::json ToJson() const;
};

}  // namespace vqd::model
