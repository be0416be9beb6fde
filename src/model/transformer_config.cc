#include "model/transformer_config.h"

#include <utility>

#include "absl/strings/string_view.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace vqd::model {

absl::StatusOr<Transformer2DConfig> Transformer2DConfig::FromJson(const io::JsonConfig& json) {
  Transformer2DConfig c;
  VQD_ASSIGN_OR_RETURN(c.num_attention_heads, json.Int("num_attention_heads"));
  VQD_ASSIGN_OR_RETURN(c.attention_head_dim, json.Int("attention_head_dim"));
  VQD_ASSIGN_OR_RETURN(c.num_layers, json.IntOr("num_layers", 1));
  VQD_ASSIGN_OR_RETURN(c.num_vector_embeds, json.Int("num_vector_embeds"));
  VQD_ASSIGN_OR_RETURN(c.sample_size, json.Int("sample_size"));
  VQD_ASSIGN_OR_RETURN(c.cross_attention_dim, json.Int("cross_attention_dim"));
  VQD_ASSIGN_OR_RETURN(c.num_embeds_ada_norm, json.Int("num_embeds_ada_norm"));
  VQD_ASSIGN_OR_RETURN(c.attention_bias, json.BoolOr("attention_bias", false));
  VQD_ASSIGN_OR_RETURN(c.norm_eps, json.FloatOr("norm_eps", 1e-5));
  VQD_ASSIGN_OR_RETURN(c.norm_elementwise_affine, json.BoolOr("norm_elementwise_affine", true));
  VQD_ASSIGN_OR_RETURN(std::string activation, json.StringOr("activation_fn", "geglu"));
  VQD_ASSIGN_OR_RETURN(std::string norm_type, json.StringOr("norm_type", "layer_norm"));
  VQD_ASSIGN_OR_RETURN(bool only_cross, json.BoolOr("only_cross_attention", false));
  VQD_ASSIGN_OR_RETURN(bool double_self, json.BoolOr("double_self_attention", false));
  VQD_ASSIGN_OR_RETURN(bool upcast, json.BoolOr("upcast_attention", false));
  VQD_ASSIGN_OR_RETURN(std::string attention_type, json.StringOr("attention_type", "default"));

  auto unsupported = [&](absl::string_view key, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(json.path(), ": \"", key, "\" ", why));
  };
  auto set = [&](const char* key) { return json.json().contains(key) && !json.json()[key].is_null(); };
  if (set("in_channels")) return unsupported("in_channels", "is set: only the discrete (num_vector_embeds) transformer is supported");
  if (set("patch_size")) return unsupported("patch_size", "is set: only the discrete (num_vector_embeds) transformer is supported");
  if (activation != "geglu-approximate") {
    return unsupported("activation_fn", absl::StrCat("is \"", activation, "\"; VQ-Diffusion uses \"geglu-approximate\""));
  }
  // diffusers turns "layer_norm" into "ada_norm" whenever num_embeds_ada_norm is set.
  if (norm_type != "layer_norm" && norm_type != "ada_norm") {
    return unsupported("norm_type", absl::StrCat("is \"", norm_type, "\"; expected ada_norm (or layer_norm)"));
  }
  if (only_cross || double_self || upcast || attention_type != "default") {
    return unsupported("only_cross_attention/double_self_attention/upcast_attention/attention_type",
                       "select a variant VQ-Diffusion does not use");
  }
  // Each size named with its value, so that a broken config says which field to fix.
  const std::pair<const char*, std::pair<int64_t, int64_t>> sizes[] = {
      {"num_attention_heads", {c.num_attention_heads, 1}}, {"attention_head_dim", {c.attention_head_dim, 1}},
      {"num_layers", {c.num_layers, 1}},                   {"num_vector_embeds", {c.num_vector_embeds, 2}},
      {"sample_size", {c.sample_size, 1}},                 {"cross_attention_dim", {c.cross_attention_dim, 1}},
      {"num_embeds_ada_norm", {c.num_embeds_ada_norm, 1}}};
  for (const auto& [key, value_min] : sizes) {
    if (value_min.first < value_min.second) {
      return unsupported(key, absl::StrCat("must be at least ", value_min.second, ", got ", value_min.first));
    }
  }
  return c;
}

nlohmann::json Transformer2DConfig::ToJson() const {
  return {{"_class_name", "Transformer2DModel"},
          {"activation_fn", "geglu-approximate"},
          {"attention_bias", attention_bias},
          {"attention_head_dim", attention_head_dim},
          {"cross_attention_dim", cross_attention_dim},
          {"dropout", 0.0},
          {"in_channels", nullptr},
          {"norm_elementwise_affine", norm_elementwise_affine},
          {"norm_eps", norm_eps},
          {"norm_num_groups", 32},
          {"norm_type", "layer_norm"},
          {"num_attention_heads", num_attention_heads},
          {"num_embeds_ada_norm", num_embeds_ada_norm},
          {"num_layers", num_layers},
          {"num_vector_embeds", num_vector_embeds},
          {"sample_size", sample_size}};
}

}  // namespace vqd::model
