#include "model/class_transformer_config.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace vqd::model {

absl::StatusOr<ClassTransformerConfig> ClassTransformerConfig::FromJson(const io::JsonConfig& json) {
  ClassTransformerConfig c;
  VQD_ASSIGN_OR_RETURN(c.num_layers, json.Int("num_layers"));
  VQD_ASSIGN_OR_RETURN(c.num_attention_heads, json.Int("num_attention_heads"));
  VQD_ASSIGN_OR_RETURN(c.attention_head_dim, json.Int("attention_head_dim"));
  VQD_ASSIGN_OR_RETURN(c.num_vector_embeds, json.Int("num_vector_embeds"));
  VQD_ASSIGN_OR_RETURN(c.pos_embed_height, json.Int("pos_embed_height"));
  VQD_ASSIGN_OR_RETURN(c.pos_embed_width, json.Int("pos_embed_width"));
  VQD_ASSIGN_OR_RETURN(c.latent_height, json.Int("latent_height"));
  VQD_ASSIGN_OR_RETURN(c.latent_width, json.Int("latent_width"));
  VQD_ASSIGN_OR_RETURN(c.num_embeds_ada_norm, json.Int("num_embeds_ada_norm"));
  VQD_ASSIGN_OR_RETURN(c.num_embeds_class, json.Int("num_embeds_class"));
  VQD_ASSIGN_OR_RETURN(c.num_classes, json.Int("num_classes"));
  VQD_ASSIGN_OR_RETURN(c.null_class_id, json.Int("null_class_id"));
  VQD_ASSIGN_OR_RETURN(c.null_class_mode, json.String("null_class_mode"));
  VQD_ASSIGN_OR_RETURN(c.ff_mult, json.IntOr("ff_mult", 4));
  VQD_ASSIGN_OR_RETURN(int64_t kernel, json.IntOr("ff_kernel_size", 3));
  VQD_ASSIGN_OR_RETURN(std::string activation, json.StringOr("activation_fn", "quick_gelu"));
  VQD_ASSIGN_OR_RETURN(c.norm_eps, json.FloatOr("norm_eps", 1e-5));

  auto bad = [&](const char* key, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(json.path(), ": \"", key, "\" ", why));
  };
  // Each size named with its value, so that a broken config says which field to fix.
  const std::pair<const char*, std::pair<int64_t, int64_t>> sizes[] = {
      {"num_layers", {c.num_layers, 1}},           {"num_attention_heads", {c.num_attention_heads, 1}},
      {"attention_head_dim", {c.attention_head_dim, 1}}, {"num_vector_embeds", {c.num_vector_embeds, 2}},
      {"pos_embed_height", {c.pos_embed_height, 1}}, {"pos_embed_width", {c.pos_embed_width, 1}},
      {"latent_height", {c.latent_height, 1}},     {"latent_width", {c.latent_width, 1}},
      {"num_embeds_ada_norm", {c.num_embeds_ada_norm, 1}}, {"num_embeds_class", {c.num_embeds_class, 1}},
      {"ff_mult", {c.ff_mult, 1}}};
  for (const auto& [key, value_min] : sizes) {
    if (value_min.first < value_min.second) {
      return bad(key, absl::StrCat("must be at least ", value_min.second, ", got ", value_min.first));
    }
  }
  if (kernel != 3) return bad("ff_kernel_size", absl::StrCat("is ", kernel, "; the official models use 3"));
  if (activation != "quick_gelu") {
    return bad("activation_fn", absl::StrCat("is \"", activation, "\"; the official models use quick_gelu (GELU2)"));
  }
  if (c.latent_height * c.latent_width > c.pos_embed_height * c.pos_embed_width) {
    return bad("latent_height", "x latent_width exceeds the positional tables (pos_embed_height x pos_embed_width)");
  }
  if (c.num_classes <= 0 || c.num_classes > c.num_embeds_class) {
    return bad("num_classes", absl::StrCat("must be in [1, num_embeds_class = ", c.num_embeds_class, "], got ",
                                           c.num_classes));
  }
  if (c.null_class_mode == "row") {
    if (c.null_class_id < c.num_classes || c.null_class_id >= c.num_embeds_class) {
      return bad("null_class_id", absl::StrCat("must name a row of the class tables beyond the classes ([",
                                               c.num_classes, ", ", c.num_embeds_class, ")) in \"row\" mode"));
    }
  } else if (c.null_class_mode == "mean") {
    if (c.null_class_id < c.num_embeds_class) {
      return bad("null_class_id", absl::StrCat("must lie beyond the class tables (>= ", c.num_embeds_class,
                                               ") in \"mean\" mode"));
    }
  } else {
    return bad("null_class_mode", absl::StrCat("is \"", c.null_class_mode, "\"; expected \"row\" or \"mean\""));
  }
  return c;
}

nlohmann::json ClassTransformerConfig::ToJson() const {
  return {{"_class_name", "VQDiffusionClassTransformer"},
          {"activation_fn", "quick_gelu"},
          {"attention_bias", true},
          {"attention_head_dim", attention_head_dim},
          {"ff_kernel_size", 3},
          {"ff_mult", ff_mult},
          {"latent_height", latent_height},
          {"latent_width", latent_width},
          {"norm_eps", norm_eps},
          {"null_class_id", null_class_id},
          {"null_class_mode", null_class_mode},
          {"num_attention_heads", num_attention_heads},
          {"num_classes", num_classes},
          {"num_embeds_ada_norm", num_embeds_ada_norm},
          {"num_embeds_class", num_embeds_class},
          {"num_layers", num_layers},
          {"num_vector_embeds", num_vector_embeds},
          {"pos_embed_height", pos_embed_height},
          {"pos_embed_width", pos_embed_width}};
}

}  // namespace vqd::model
