#include "convert/official_configs.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "io/yaml_config.h"

namespace vqd::convert {
namespace fs = std::filesystem;
namespace {

// config[a][b]... as a nested config, naming the whole path in errors.
absl::StatusOr<io::JsonConfig> Path(const io::JsonConfig& root, const std::vector<std::string>& keys) {
  io::JsonConfig node = root;
  for (const std::string& key : keys) {
    VQD_ASSIGN_OR_RETURN(node, node.Object(key));
  }
  return node;
}

absl::Status ExpectPair(const std::vector<int64_t>& v, const std::string& path, const char* key) {
  if (v.size() != 2 || v[0] <= 0 || v[1] <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": \"", key, "\" must be two positive integers"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OfficialModelConfig> ReadOfficialModelConfig(const std::string& path) {
  VQD_ASSIGN_OR_RETURN(io::JsonConfig root, io::LoadYamlConfig(path));
  OfficialModelConfig c;
  c.path = path;
  VQD_ASSIGN_OR_RETURN(io::JsonConfig model, Path(root, {"model"}));
  VQD_ASSIGN_OR_RETURN(std::string target, model.String("target"));
  if (absl::EndsWith(target, ".C_DALLE")) {
    c.family = OfficialFamily::kClass;
  } else if (absl::EndsWith(target, ".DALLE")) {
    c.family = OfficialFamily::kText;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(path, ": model.target is \"", target,
                                                   "\"; expected the official DALLE (text) or C_DALLE (class) wrapper"
                                                   " (FFHQ's unconditional model was never released)"));
  }
  VQD_ASSIGN_OR_RETURN(io::JsonConfig diffusion, Path(model, {"params", "diffusion_config", "params"}));
  VQD_ASSIGN_OR_RETURN(c.diffusion_steps, diffusion.IntOr("diffusion_step", 100));
  VQD_ASSIGN_OR_RETURN(std::string alpha, diffusion.StringOr("alpha_init_type", "alpha1"));
  if (alpha != "alpha1") {
    return absl::InvalidArgumentError(absl::StrCat(path, ": alpha_init_type \"", alpha, "\" is not the released alpha1"));
  }
  VQD_ASSIGN_OR_RETURN(io::JsonConfig transformer, Path(diffusion, {"transformer_config", "params"}));
  VQD_ASSIGN_OR_RETURN(c.num_layers, transformer.Int("n_layer"));
  VQD_ASSIGN_OR_RETURN(c.width, transformer.Int("n_embd"));
  VQD_ASSIGN_OR_RETURN(c.heads, transformer.Int("n_head"));
  VQD_ASSIGN_OR_RETURN(c.content_grid, transformer.IntList("content_spatial_size"));
  VQD_RETURN_IF_ERROR(ExpectPair(c.content_grid, path, "content_spatial_size"));
  VQD_ASSIGN_OR_RETURN(c.mlp_hidden_times, transformer.IntOr("mlp_hidden_times", 4));
  VQD_ASSIGN_OR_RETURN(std::string attn_type, transformer.String("attn_type"));
  VQD_ASSIGN_OR_RETURN(std::string activation, transformer.StringOr("block_activate", "GELU2"));
  VQD_ASSIGN_OR_RETURN(std::string timestep_type, transformer.StringOr("timestep_type", "adalayernorm"));
  if (activation != "GELU2" || timestep_type != "adalayernorm") {
    return absl::InvalidArgumentError(absl::StrCat(path, ": block_activate ", activation, " / timestep_type ",
                                                   timestep_type, " are not the released GELU2 / adalayernorm"));
  }
  if (c.heads <= 0 || c.width <= 0 || c.width % c.heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": n_embd ", c.width, " is not a multiple of n_head ", c.heads));
  }
  VQD_ASSIGN_OR_RETURN(io::JsonConfig content_emb, Path(diffusion, {"content_emb_config", "params"}));
  VQD_ASSIGN_OR_RETURN(c.num_codes, content_emb.Int("num_embed"));
  VQD_ASSIGN_OR_RETURN(c.pos_table, content_emb.IntList("spatial_size"));
  VQD_RETURN_IF_ERROR(ExpectPair(c.pos_table, path, "spatial_size"));

  if (c.family == OfficialFamily::kText) {
    if (attn_type != "selfcross") {
      return absl::InvalidArgumentError(absl::StrCat(path, ": a DALLE model with attn_type \"", attn_type, "\""));
    }
    VQD_ASSIGN_OR_RETURN(c.condition_dim, transformer.Int("condition_dim"));
    VQD_ASSIGN_OR_RETURN(c.condition_seq_len, transformer.IntOr("condition_seq_len", 77));
    VQD_ASSIGN_OR_RETURN(io::JsonConfig codec, Path(model, {"params", "condition_codec_config", "params"}));
    VQD_ASSIGN_OR_RETURN(c.pad_value, codec.IntOr("pad_value", 0));
    VQD_ASSIGN_OR_RETURN(int64_t context, codec.IntOr("context_length", 77));
    VQD_ASSIGN_OR_RETURN(bool start_and_end, codec.BoolOr("add_start_and_end", true));
    if (context != c.condition_seq_len || !start_and_end || c.pad_value != 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": the tokenizer settings (context_length ", context,
                                                     ", add_start_and_end, pad_value ", c.pad_value,
                                                     ") are not the released CLIP ones (77, true, 0)"));
    }
    VQD_ASSIGN_OR_RETURN(io::JsonConfig tokenizer, Path(codec, {"tokenizer_config"}));
    if (tokenizer.Has("params")) {
      VQD_ASSIGN_OR_RETURN(io::JsonConfig params, tokenizer.Object("params"));
      VQD_ASSIGN_OR_RETURN(c.tokenizer_end_idx, params.IntOr("end_idx", 49152));
    }
  } else {
    if (attn_type != "selfcondition") {
      return absl::InvalidArgumentError(absl::StrCat(path, ": a C_DALLE model with attn_type \"", attn_type, "\""));
    }
    VQD_ASSIGN_OR_RETURN(std::string mlp_type, transformer.StringOr("mlp_type", "fc"));
    VQD_ASSIGN_OR_RETURN(std::string class_type, transformer.StringOr("class_type", "adalayernorm"));
    if (mlp_type != "conv_mlp" || class_type != "adalayernorm") {
      return absl::InvalidArgumentError(absl::StrCat(path, ": mlp_type ", mlp_type, " / class_type ", class_type,
                                                     " are not the released conv_mlp / adalayernorm"));
    }
    VQD_ASSIGN_OR_RETURN(c.class_number, transformer.IntOr("class_number", 1000));
  }

  VQD_ASSIGN_OR_RETURN(io::JsonConfig content_codec, Path(model, {"params", "content_codec_config"}));
  VQD_ASSIGN_OR_RETURN(c.codec_target, content_codec.String("target"));
  if (!absl::EndsWith(c.codec_target, ".TamingGumbelVQVAE") && !absl::EndsWith(c.codec_target, ".TamingVQVAE")) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": content codec \"", c.codec_target,
        "\" is not a Taming VQGAN (ITHQ's PatchVQGAN is served from the diffusers version on the hub instead)"));
  }
  VQD_ASSIGN_OR_RETURN(io::JsonConfig codec_params, content_codec.Object("params"));
  VQD_ASSIGN_OR_RETURN(c.vqgan_config, codec_params.String("config_path"));
  VQD_ASSIGN_OR_RETURN(c.shrink_table, codec_params.String("mapping_path"));
  VQD_ASSIGN_OR_RETURN(c.full_codes, codec_params.Int("num_tokens"));
  VQD_ASSIGN_OR_RETURN(c.quantize_number, codec_params.Int("quantize_number"));
  VQD_ASSIGN_OR_RETURN(c.token_shape, codec_params.IntList("token_shape"));
  VQD_RETURN_IF_ERROR(ExpectPair(c.token_shape, path, "token_shape"));
  if (c.quantize_number != c.num_codes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the codec's quantize_number ", c.quantize_number,
                                                   " != the content embedding's num_embed ", c.num_codes));
  }
  if (c.token_shape != c.content_grid) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the codec's token_shape [", absl::StrJoin(c.token_shape, ", "),
                                                   "] != the transformer's content_spatial_size [",
                                                   absl::StrJoin(c.content_grid, ", "), "]"));
  }
  return c;
}

absl::StatusOr<TamingVqganConfig> ReadTamingVqganConfig(const std::string& path) {
  VQD_ASSIGN_OR_RETURN(io::JsonConfig root, io::LoadYamlConfig(path));
  TamingVqganConfig c;
  c.path = path;
  VQD_ASSIGN_OR_RETURN(io::JsonConfig model, Path(root, {"model"}));
  VQD_ASSIGN_OR_RETURN(std::string target, model.String("target"));
  if (absl::EndsWith(target, ".GumbelVQ")) {
    c.gumbel = true;
  } else if (!absl::EndsWith(target, ".VQModel")) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": model.target \"", target, "\" is not GumbelVQ or VQModel"));
  }
  VQD_ASSIGN_OR_RETURN(io::JsonConfig params, model.Object("params"));
  VQD_ASSIGN_OR_RETURN(c.embed_dim, params.Int("embed_dim"));
  VQD_ASSIGN_OR_RETURN(c.n_embed, params.Int("n_embed"));
  VQD_ASSIGN_OR_RETURN(io::JsonConfig dd, params.Object("ddconfig"));
  VQD_ASSIGN_OR_RETURN(bool double_z, dd.BoolOr("double_z", false));
  if (double_z) return absl::InvalidArgumentError(absl::StrCat(path, ": ddconfig.double_z is true (not a VQGAN encoder)"));
  VQD_ASSIGN_OR_RETURN(c.z_channels, dd.Int("z_channels"));
  VQD_ASSIGN_OR_RETURN(c.resolution, dd.Int("resolution"));
  VQD_ASSIGN_OR_RETURN(c.in_channels, dd.IntOr("in_channels", 3));
  VQD_ASSIGN_OR_RETURN(c.out_channels, dd.IntOr("out_ch", 3));
  VQD_ASSIGN_OR_RETURN(c.ch, dd.Int("ch"));
  VQD_ASSIGN_OR_RETURN(c.ch_mult, dd.IntList("ch_mult"));
  VQD_ASSIGN_OR_RETURN(c.num_res_blocks, dd.Int("num_res_blocks"));
  VQD_ASSIGN_OR_RETURN(c.attn_resolutions, dd.IntListOr("attn_resolutions", {}));
  if (c.ch_mult.empty() || c.ch <= 0 || c.embed_dim <= 0 || c.n_embed <= 0 || c.z_channels <= 0 ||
      c.resolution <= 0 || c.num_res_blocks < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": VQGAN sizes must be positive"));
  }
  return c;
}

absl::StatusOr<std::string> FindFileNamedByConfig(const std::string& named, const std::string& config_path,
                                                  const std::string& what) {
  std::error_code ec;
  std::vector<fs::path> tried;
  auto found = [&](const fs::path& p) {
    tried.push_back(p);
    return fs::is_regular_file(p, ec);
  };
  const fs::path given(named);
  if (found(given)) return given.string();
  fs::path dir = fs::absolute(fs::path(config_path), ec).parent_path();
  if (given.is_relative()) {
    for (fs::path d = dir; !d.empty(); d = d.parent_path()) {
      if (found(d / given)) return (d / given).string();
      if (d == d.parent_path()) break;
    }
  }
  if (found(dir / given.filename())) return (dir / given.filename()).string();
  std::vector<std::string> names;
  for (size_t i = 0; i < tried.size() && i < 4; ++i) names.push_back(tried[i].string());
  return absl::NotFoundError(absl::StrCat(config_path, " names ", what, " \"", named, "\", which was not found (tried ",
                                          absl::StrJoin(names, ", "), tried.size() > 4 ? ", ..." : "",
                                          "); pass its path explicitly"));
}

}  // namespace vqd::convert
