#include "model/vq_model_config.h"

#include <utility>

#include "absl/strings/string_view.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace vqd::model {

absl::StatusOr<VqModelConfig> VqModelConfig::FromJson(const io::JsonConfig& json) {
  VqModelConfig c;
  VQD_ASSIGN_OR_RETURN(c.in_channels, json.IntOr("in_channels", 3));
  VQD_ASSIGN_OR_RETURN(c.out_channels, json.IntOr("out_channels", 3));
  VQD_ASSIGN_OR_RETURN(c.down_block_types, json.StringList("down_block_types"));
  VQD_ASSIGN_OR_RETURN(c.up_block_types, json.StringList("up_block_types"));
  VQD_ASSIGN_OR_RETURN(c.block_out_channels, json.IntList("block_out_channels"));
  VQD_ASSIGN_OR_RETURN(c.layers_per_block, json.IntOr("layers_per_block", 1));
  VQD_ASSIGN_OR_RETURN(c.latent_channels, json.IntOr("latent_channels", 3));
  VQD_ASSIGN_OR_RETURN(c.num_vq_embeddings, json.Int("num_vq_embeddings"));
  VQD_ASSIGN_OR_RETURN(c.vq_embed_dim, json.Int("vq_embed_dim"));
  VQD_ASSIGN_OR_RETURN(c.norm_num_groups, json.IntOr("norm_num_groups", 32));
  VQD_ASSIGN_OR_RETURN(c.mid_block_add_attention, json.BoolOr("mid_block_add_attention", true));
  VQD_ASSIGN_OR_RETURN(c.sample_size, json.IntOr("sample_size", 32));
  VQD_ASSIGN_OR_RETURN(std::string act, json.StringOr("act_fn", "silu"));
  VQD_ASSIGN_OR_RETURN(std::string norm_type, json.StringOr("norm_type", "group"));
  VQD_ASSIGN_OR_RETURN(bool lookup, json.BoolOr("lookup_from_codebook", false));

  auto bad = [&](absl::string_view key, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(json.path(), ": \"", key, "\" ", why));
  };
  if (act != "silu") return bad("act_fn", absl::StrCat("is \"", act, "\"; only silu is supported"));
  if (norm_type != "group") return bad("norm_type", absl::StrCat("is \"", norm_type, "\"; only group is supported"));
  if (lookup) return bad("lookup_from_codebook", "is true; only false (the pipeline passes codebook vectors) is supported");
  const size_t n = c.block_out_channels.size();
  if (n == 0) return bad("block_out_channels", "is empty");
  if (c.down_block_types.size() != n) return bad("down_block_types", absl::StrCat("has ", c.down_block_types.size(), " entries, block_out_channels has ", n));
  if (c.up_block_types.size() != n) return bad("up_block_types", absl::StrCat("has ", c.up_block_types.size(), " entries, block_out_channels has ", n));
  for (const auto& t : c.down_block_types) {
    if (t != "DownEncoderBlock2D" && t != "AttnDownEncoderBlock2D") return bad("down_block_types", absl::StrCat("has unsupported \"", t, "\""));
  }
  for (const auto& t : c.up_block_types) {
    if (t != "UpDecoderBlock2D" && t != "AttnUpDecoderBlock2D") return bad("up_block_types", absl::StrCat("has unsupported \"", t, "\""));
  }
  for (int64_t ch : c.block_out_channels) {
    if (ch <= 0 || c.norm_num_groups <= 0 || ch % c.norm_num_groups != 0) {
      return bad("block_out_channels", absl::StrCat("entry ", ch, " is not a positive multiple of norm_num_groups ", c.norm_num_groups));
    }
  }
  // Taming's num_res_blocks 0 (encoder levels without resnets) works only where no level changes
  // the channel count: nothing else would convert them.
  if (c.layers_per_block == 0) {
    for (int64_t ch : c.block_out_channels) {
      if (ch != c.block_out_channels[0]) {
        return bad("layers_per_block", "is 0, which needs every block_out_channels entry equal");
      }
    }
  }
  // Each size named with its value, so that a broken config says which field to fix.
  const std::pair<const char*, std::pair<int64_t, int64_t>> sizes[] = {
      {"layers_per_block", {c.layers_per_block, 0}}, {"latent_channels", {c.latent_channels, 1}},
      {"num_vq_embeddings", {c.num_vq_embeddings, 1}}, {"vq_embed_dim", {c.vq_embed_dim, 1}},
      {"in_channels", {c.in_channels, 1}},           {"out_channels", {c.out_channels, 1}}};
  for (const auto& [key, value_min] : sizes) {
    if (value_min.first < value_min.second) {
      return bad(key, absl::StrCat("must be at least ", value_min.second, ", got ", value_min.first));
    }
  }
  if (n > 8) return bad("block_out_channels", absl::StrCat("has ", n, " blocks; at most 8 are supported"));
  return c;
}

nlohmann::json VqModelConfig::ToJson() const {
  return {{"_class_name", "VQModel"},
          {"act_fn", "silu"},
          {"block_out_channels", block_out_channels},
          {"down_block_types", down_block_types},
          {"in_channels", in_channels},
          {"latent_channels", latent_channels},
          {"layers_per_block", layers_per_block},
          {"norm_num_groups", norm_num_groups},
          {"num_vq_embeddings", num_vq_embeddings},
          {"out_channels", out_channels},
          {"sample_size", sample_size},
          {"up_block_types", up_block_types},
          {"vq_embed_dim", vq_embed_dim}};
}

}  // namespace vqd::model
