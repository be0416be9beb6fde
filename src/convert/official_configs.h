// The YAML configs of the official microsoft/VQ-Diffusion checkpoints (OUTPUT/pretrained_model/
// config_*.yaml, configs/*.yaml) and of the Taming VQGANs they decode with, reduced to what a
// conversion needs. Only the numbers the weights cannot tell are taken on trust (the head count
// above all); everything else is cross-checked against the checkpoint's shapes later.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vqd::convert {

// Which official wrapper a config builds.
enum class OfficialFamily {
  kText,   // DALLE + Text2ImageTransformer ('selfcross' blocks, CLIP text condition)
  kClass,  // C_DALLE + Condition2ImageTransformer ('selfcondition' blocks, class labels)
};

struct OfficialModelConfig {
  std::string path;
  OfficialFamily family = OfficialFamily::kText;
  int64_t num_layers = 0, width = 0, heads = 0;
  int64_t num_codes = 0;  // content_emb num_embed: K (the mask is K)
  int64_t diffusion_steps = 100;
  std::vector<int64_t> content_grid;  // transformer content_spatial_size [h, w]
  std::vector<int64_t> pos_table;     // content_emb spatial_size [h, w] (the positional tables)
  int64_t mlp_hidden_times = 4;
  // Text family.
  int64_t condition_dim = 0, condition_seq_len = 77;
  int64_t tokenizer_end_idx = 49152;
  int64_t pad_value = 0;
  // Class family.
  int64_t class_number = 0;
  // Content codec.
  std::string codec_target;      // ...TamingGumbelVQVAE or ...TamingVQVAE
  std::string vqgan_config;      // config_path as written
  std::string shrink_table;      // mapping_path as written
  int64_t full_codes = 0;        // num_tokens
  int64_t quantize_number = 0;   // the shrunk codebook: must equal num_codes
  std::vector<int64_t> token_shape;
};

// A Taming VQGAN config (taming_f8_8192_openimages.yaml, vqgan_imagenet_f16_16384.yaml).
struct TamingVqganConfig {
  std::string path;
  bool gumbel = false;  // GumbelVQ (codebook "quantize.embed") or VQModel ("quantize.embedding")
  int64_t embed_dim = 0, n_embed = 0;
  int64_t z_channels = 0, resolution = 0, in_channels = 3, out_channels = 3, ch = 0, num_res_blocks = 0;
  std::vector<int64_t> ch_mult;
  std::vector<int64_t> attn_resolutions;
};

absl::StatusOr<OfficialModelConfig> ReadOfficialModelConfig(const std::string& path);
absl::StatusOr<TamingVqganConfig> ReadTamingVqganConfig(const std::string& path);

// Finds a file a config names: as written (relative to the working folder) if it exists, else
// relative to the config's folder and each folder above it (the official configs name files
// relative to the repository's root), else its file name alone next to the config.
absl::StatusOr<std::string> FindFileNamedByConfig(const std::string& named, const std::string& config_path,
                                                  const std::string& what);

}  // namespace vqd::convert
