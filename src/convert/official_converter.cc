#include "convert/official_converter.h"

#include <filesystem>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "convert/known_checkpoints.h"
#include "convert/official_configs.h"
#include "convert/official_weights.h"
#include "diffusion/official_sampling.h"
#include "diffusion/vq_schedule.h"
#include "io/file_util.h"
#include "io/safetensors.h"
#include "io/torch_bin.h"
#include "model/class_transformer.h"
#include "model/transformer_2d.h"
#include "model/vq_model.h"
#include "nn/state_dict.h"
#include "pipeline/model_directory.h"
#include "pipeline/model_metadata.h"
#include "pipeline/model_writer.h"
#include "pipeline/vq_diffusion_pipeline.h"
#include "text/clip_text_model.h"
#include "text/clip_tokenizer_files.h"

namespace vqd::convert {
namespace fs = std::filesystem;
namespace {

// The official code's unconditional class label (C_DALLE hard-codes it).
constexpr int64_t kOfficialNullClass = 1000;

// Modules built on the meta device: their names and shapes without any memory, to check converted
// weights against before writing them.
const nn::TensorPlacement kMeta{torch::Device(torch::kMeta), torch::kFloat32};

absl::Status Check(const torch::nn::Module& module, const io::TensorMap& weights, const std::string& component,
                   const std::string& source) {
  nn::LoadOptions options;
  options.component = component;
  options.file = source;
  return nn::CheckStateDict(module, weights, options);
}

absl::StatusOr<torch::Tensor> Require(const io::TensorMap& map, const std::string& key, int64_t dims,
                                      const std::string& source) {
  const auto it = map.find(key);
  if (it == map.end()) return absl::InvalidArgumentError(absl::StrCat(source, ": tensor ", key, " is missing"));
  const torch::Tensor& t = it->second;
  if (t.dim() != dims) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": tensor ", key, " has shape ", ShapeString(t.sizes()), ", expected ", dims, " dims"));
  }
  return t;
}

// Blocks 0..n-1 present (a gap leaves later blocks as unknown tensors, which the check reports).
int64_t CountBlocks(const io::TensorMap& transformer) {
  int64_t n = 0;
  while (true) {
    const std::string prefix = absl::StrCat("transformer.blocks.", n, ".");
    const auto it = transformer.lower_bound(prefix);
    if (it == transformer.end() || it->first.rfind(prefix, 0) != 0) return n;
    ++n;
  }
}

absl::Status Mismatch(const std::string& source, const std::string& what, int64_t from_weights, int64_t from_config,
                      const std::string& config) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what, " is ", from_weights, " in the weights but ",
                                                 from_config, " in ", config, " (a config of another model?)"));
}

model::VqModelConfig VqModelConfigFor(const TamingVqganConfig& t, int64_t shrunk_codes) {
  model::VqModelConfig c;
  c.in_channels = t.in_channels;
  c.out_channels = t.out_channels;
  c.latent_channels = t.z_channels;
  c.vq_embed_dim = t.embed_dim;
  c.num_vq_embeddings = shrunk_codes;
  c.layers_per_block = t.num_res_blocks;
  c.norm_num_groups = 32;
  c.sample_size = t.resolution;
  const int64_t n = static_cast<int64_t>(t.ch_mult.size());
  auto has_attention = [&](int64_t level) {  // Taming's curr_res at that level
    const int64_t res = t.resolution >> level;
    return std::find(t.attn_resolutions.begin(), t.attn_resolutions.end(), res) != t.attn_resolutions.end();
  };
  for (int64_t i = 0; i < n; ++i) {
    c.block_out_channels.push_back(t.ch * t.ch_mult[static_cast<size_t>(i)]);
    c.down_block_types.push_back(has_attention(i) ? "AttnDownEncoderBlock2D" : "DownEncoderBlock2D");
  }
  for (int64_t k = 0; k < n; ++k) c.up_block_types.push_back(has_attention(n - 1 - k) ? "AttnUpDecoderBlock2D" : "UpDecoderBlock2D");
  return c;
}

// Everything a converted directory gets, before any of it is written.
struct Converted {
  OfficialConversionReport report;
  std::string transformer_component;
  nlohmann::json transformer_config;
  io::TensorMap transformer;
  nlohmann::json vqvae_config;
  io::TensorMap vqvae;
  diffusion::VqScheduleConfig scheduler;
  io::TensorMap schedule;
  // Text family.
  nlohmann::json text_config;
  io::TensorMap text_encoder;
  torch::Tensor null_embedding;  // learned null, float32 [77, C]
  text::BpeMerges merges;
  std::vector<std::string> vocabulary;
};

absl::Status ConvertText(const OfficialModelConfig& config, const DiffusionTransformerParts& parts,
                         const OfficialConversionOptions& options, Converted* out) {
  const std::string& source = options.checkpoint;
  VQD_ASSIGN_OR_RETURN(torch::Tensor emb, Require(parts.transformer, "transformer.content_emb.emb.weight", 2, source));
  VQD_ASSIGN_OR_RETURN(torch::Tensor key2, Require(parts.transformer, "transformer.blocks.0.attn2.key.weight", 2, source));
  VQD_ASSIGN_OR_RETURN(torch::Tensor time_emb, Require(parts.transformer, "transformer.blocks.0.ln1.emb.weight", 2, source));
  VQD_ASSIGN_OR_RETURN(torch::Tensor height_emb, Require(parts.transformer, "transformer.content_emb.height_emb.weight", 2, source));
  VQD_ASSIGN_OR_RETURN(torch::Tensor width_emb, Require(parts.transformer, "transformer.content_emb.width_emb.weight", 2, source));
  if (config.content_grid[0] != config.content_grid[1] || config.pos_table != config.content_grid ||
      height_emb.size(0) != config.content_grid[0] || width_emb.size(0) != config.content_grid[1]) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": the text transformer's token grid and positional tables must be one square size for the diffusers "
                "layout (Transformer2DModel's sample_size); this one is not"));
  }
  model::Transformer2DConfig t;
  t.num_attention_heads = config.heads;
  t.attention_head_dim = config.width / config.heads;
  t.num_layers = CountBlocks(parts.transformer);
  t.num_vector_embeds = emb.size(0);
  t.sample_size = config.content_grid[0];
  t.cross_attention_dim = key2.size(1);
  t.num_embeds_ada_norm = time_emb.size(0);
  VQD_ASSIGN_OR_RETURN(out->transformer, TextTransformerWeights(parts.transformer));
  VQD_RETURN_IF_ERROR(CatchTorch("checking the text transformer", [&] {
    model::Transformer2DModel meta(t, kMeta);
    absl::Status s = Check(*meta, out->transformer, "transformer", source);
    TORCH_CHECK(s.ok(), std::string(s.message()));
  }));
  out->transformer_component = "transformer";
  out->transformer_config = t.ToJson();

  // The CLIP text tower the checkpoint carries (official inference uses this copy, EMA'd).
  VQD_ASSIGN_OR_RETURN(torch::Tensor tokens, Require(parts.condition_emb, "token_embedding.weight", 2, source));
  VQD_ASSIGN_OR_RETURN(torch::Tensor positions, Require(parts.condition_emb, "positional_embedding", 2, source));
  VQD_ASSIGN_OR_RETURN(torch::Tensor fc, Require(parts.condition_emb, "transformer.resblocks.0.mlp.c_fc.weight", 2, source));
  text::ClipTextConfig clip;
  clip.vocab_size = tokens.size(0);
  clip.hidden_size = tokens.size(1);
  clip.intermediate_size = fc.size(0);
  clip.max_position_embeddings = positions.size(0);
  clip.num_attention_heads = clip.hidden_size / 64;  // OpenAI CLIP: heads = width // 64
  if (clip.num_attention_heads < 1) clip.num_attention_heads = 1;
  clip.hidden_act = "quick_gelu";
  clip.layer_norm_eps = 1e-5;
  clip.num_hidden_layers = 0;
  while (parts.condition_emb.count(absl::StrCat("transformer.resblocks.", clip.num_hidden_layers, ".ln_1.weight"))) {
    ++clip.num_hidden_layers;
  }
  if (clip.hidden_size != t.cross_attention_dim || clip.hidden_size != config.condition_dim) {
    return Mismatch(source, "the CLIP width", clip.hidden_size, config.condition_dim, config.path);
  }
  if (clip.max_position_embeddings != config.condition_seq_len) {
    return Mismatch(source, "the CLIP context length", clip.max_position_embeddings, config.condition_seq_len, config.path);
  }
  VQD_ASSIGN_OR_RETURN(out->text_encoder, ClipTextWeights(parts.condition_emb));
  VQD_RETURN_IF_ERROR(CatchTorch("checking the CLIP text tower", [&] {
    text::ClipTextModel meta(clip, kMeta);
    absl::Status s = Check(*meta, out->text_encoder, "text_encoder", source);
    TORCH_CHECK(s.ok(), std::string(s.message()));
  }));
  out->text_config = clip.ToJson();
  VQD_ASSIGN_OR_RETURN(out->merges, text::ReadOpenAiBpeMerges(options.bpe, config.tokenizer_end_idx));
  VQD_ASSIGN_OR_RETURN(out->vocabulary, text::ClipVocabulary(out->merges, /*skip_repeated_results=*/false));
  const int64_t vocab = static_cast<int64_t>(out->vocabulary.size());
  if (vocab != clip.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(options.bpe, " cut at the config's end_idx ", config.tokenizer_end_idx,
                                                   " gives ", vocab, " tokens, the checkpoint's CLIP has ",
                                                   clip.vocab_size, " (another BPE file or config?)"));
  }
  out->text_config["bos_token_id"] = vocab - 2;  // <|startoftext|>
  out->text_config["eos_token_id"] = vocab - 1;  // <|endoftext|>
  out->text_config["pad_token_id"] = 0;

  if (parts.empty_text_embed.defined() && !options.zero_shot_null) {
    const torch::Tensor& null = parts.empty_text_embed;
    if (null.dim() != 2 || null.size(0) != config.condition_seq_len || null.size(1) != clip.hidden_size) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": empty_text_embed is ", ShapeString(null.sizes()),
                                                     ", expected [", config.condition_seq_len, ", ", clip.hidden_size, "]"));
    }
    out->null_embedding = null.to(torch::kFloat32).contiguous();  // float64 in the checkpoint
  }
  out->report.learned_null = out->null_embedding.defined();
  out->report.num_layers = t.num_layers;
  out->report.codes = t.num_vector_embeds - 1;
  out->report.grid_height = out->report.grid_width = t.sample_size;
  return absl::OkStatus();
}

absl::Status ConvertClass(const OfficialModelConfig& config, const DiffusionTransformerParts& parts,
                          const OfficialConversionOptions& options, Converted* out) {
  const std::string& source = options.checkpoint;
  VQD_ASSIGN_OR_RETURN(torch::Tensor emb, Require(parts.transformer, "transformer.content_emb.emb.weight", 2, source));
  VQD_ASSIGN_OR_RETURN(torch::Tensor height_emb, Require(parts.transformer, "transformer.content_emb.height_emb.weight", 2, source));
  VQD_ASSIGN_OR_RETURN(torch::Tensor width_emb, Require(parts.transformer, "transformer.content_emb.width_emb.weight", 2, source));
  VQD_ASSIGN_OR_RETURN(torch::Tensor time_emb, Require(parts.transformer, "transformer.blocks.0.ln1.emb.weight", 2, source));
  VQD_ASSIGN_OR_RETURN(torch::Tensor class_emb, Require(parts.transformer, "transformer.blocks.0.ln2.emb.weight", 2, source));
  VQD_ASSIGN_OR_RETURN(torch::Tensor conv1, Require(parts.transformer, "transformer.blocks.0.mlp.conv1.weight", 4, source));
  model::ClassTransformerConfig t;
  t.num_layers = CountBlocks(parts.transformer);
  t.num_attention_heads = config.heads;
  t.attention_head_dim = config.width / config.heads;
  t.num_vector_embeds = emb.size(0);
  t.pos_embed_height = height_emb.size(0);
  t.pos_embed_width = width_emb.size(0);
  if (t.pos_embed_height != config.pos_table[0] || t.pos_embed_width != config.pos_table[1]) {
    return Mismatch(source, "the positional table height", t.pos_embed_height, config.pos_table[0], config.path);
  }
  t.latent_height = config.content_grid[0];
  t.latent_width = config.content_grid[1];
  t.num_embeds_ada_norm = time_emb.size(0);
  t.num_embeds_class = class_emb.size(0);
  // imagenet_pretrained has the config's 1000 rows; imagenet_learnable one more (the official
  // imagenet_cf flag), its row 1000 being the learned null. Anything else is another model.
  if (t.num_embeds_class != config.class_number && t.num_embeds_class != config.class_number + 1) {
    return Mismatch(source, "the class table", t.num_embeds_class, config.class_number, config.path);
  }
  t.null_class_id = kOfficialNullClass;
  t.null_class_mode = t.num_embeds_class > kOfficialNullClass ? "row" : "mean";
  t.num_classes = std::min(t.num_embeds_class, kOfficialNullClass);
  t.ff_mult = conv1.size(0) / config.width;
  VQD_ASSIGN_OR_RETURN(out->transformer, ClassTransformerWeights(parts.transformer));
  VQD_RETURN_IF_ERROR(CatchTorch("checking the class transformer", [&] {
    model::ClassTransformer meta(t, kMeta);
    absl::Status s = Check(*meta, out->transformer, "class_transformer", source);
    TORCH_CHECK(s.ok(), std::string(s.message()));
  }));
  out->transformer_component = "class_transformer";
  out->transformer_config = t.ToJson();
  out->report.learned_null = t.null_class_mode == "row";
  out->report.num_layers = t.num_layers;
  out->report.codes = t.num_vector_embeds - 1;
  out->report.grid_height = t.latent_height;
  out->report.grid_width = t.latent_width;
  out->report.num_classes = t.num_classes;
  return absl::OkStatus();
}

absl::Status WriteFiles(const Converted& c, const pipeline::ModelMetadata& metadata, const fs::path& root) {
  const bool text = c.report.family == "text";
  const std::string stem = "diffusion_pytorch_model";
  if (text) {
    VQD_RETURN_IF_ERROR(pipeline::WriteJsonFile((root / "model_index.json").string(), pipeline::TextPipelineIndex()));
    VQD_RETURN_IF_ERROR(pipeline::WriteComponentFiles((root / "text_encoder").string(), "model", c.text_encoder,
                                                      c.text_config, "config.json", torch::kFloat32));
    VQD_RETURN_IF_ERROR(text::WriteClipTokenizerFiles((root / "tokenizer").string(), c.vocabulary, c.merges));
    nlohmann::json null_config = {{"_class_name", "LearnedClassifierFreeSamplingEmbeddings"},
                                  {"_diffusers_version", "0.8.0.dev0"},
                                  {"learnable", c.null_embedding.defined()}};
    io::TensorMap null_weights;
    if (c.null_embedding.defined()) {
      null_config["hidden_size"] = c.null_embedding.size(1);
      null_config["length"] = c.null_embedding.size(0);
      null_weights["embeddings"] = c.null_embedding;
    } else {
      null_config["hidden_size"] = nullptr;
      null_config["length"] = nullptr;
      // diffusers' module still has the parameter, as an empty tensor (Parameter(None)).
      null_weights["embeddings"] = torch::empty({0}, torch::kFloat32);
    }
    VQD_RETURN_IF_ERROR(pipeline::WriteComponentFiles((root / "learned_classifier_free_sampling_embeddings").string(),
                                                      stem, null_weights, null_config, "config.json", torch::kFloat32));
  } else {
    nlohmann::json index = {{"_class_name", pipeline::kClassPipelineName},
                            {"class_transformer", {"vqd", "VQDiffusionClassTransformer"}},
                            {"scheduler", {"diffusers", "VQDiffusionScheduler"}},
                            {"vqvae", {"diffusers", "VQModel"}}};
    VQD_RETURN_IF_ERROR(pipeline::WriteJsonFile((root / "model_index.json").string(), index));
  }
  VQD_RETURN_IF_ERROR(pipeline::WriteComponentFiles((root / c.transformer_component).string(), stem, c.transformer,
                                                    c.transformer_config, "config.json", torch::kFloat32));
  VQD_RETURN_IF_ERROR(pipeline::WriteComponentFiles((root / "vqvae").string(), stem, c.vqvae, c.vqvae_config,
                                                    "config.json", torch::kFloat32));
  std::error_code ec;
  fs::create_directories(root / "scheduler", ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", (root / "scheduler").string()));
  VQD_RETURN_IF_ERROR(pipeline::WriteJsonFile((root / "scheduler" / "scheduler_config.json").string(),
                                              c.scheduler.ToJson()));
  VQD_RETURN_IF_ERROR(io::WriteSafetensors((root / "scheduler" / pipeline::kOfficialScheduleFile).string(), c.schedule,
                                           {{"format", "pt"}}));
  return pipeline::WriteJsonFile((root / pipeline::kModelMetadataFile).string(), metadata.ToJson());
}

// Writes the directory `out`, which must not exist or be empty; a failure removes what was written.
absl::Status WriteDirectory(const Converted& c, const pipeline::ModelMetadata& metadata, const std::string& out) {
  const fs::path root(out);
  std::error_code ec;
  if (fs::exists(root, ec) && !(fs::is_directory(root, ec) && fs::is_empty(root, ec))) {
    return absl::AlreadyExistsError(absl::StrCat(out, " exists and is not an empty folder"));
  }
  fs::create_directories(root, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", out, ": ", ec.message()));
  absl::Status status = WriteFiles(c, metadata, root);
  if (!status.ok()) fs::remove_all(root, ec);
  return status;
}

}  // namespace

std::string OfficialConversionReport::Summary() const {
  std::string s = absl::StrFormat(
      "%s: %s family, %d layers x %d (%d heads), %d codes on a %dx%d grid, %s null, weights from ckpt[\"%s\"]",
      checkpoint_name, family, num_layers, width, heads, codes, grid_height, grid_width,
      learned_null ? "learned" : (family == "text" ? "zero-shot (empty prompt)" : "mean-class"), weights_from);
  if (family == "class") absl::StrAppend(&s, absl::StrFormat(", %d classes", num_classes));
  absl::StrAppend(&s, absl::StrFormat("; %d transformer parameters; defaults: guidance %g, truncation %g (%s)",
                                      transformer_parameters, guidance_scale, truncation_rate, defaults_source));
  return s;
}

absl::StatusOr<OfficialConversionReport> ConvertOfficialCheckpoint(const OfficialConversionOptions& options) {
  VQD_ASSIGN_OR_RETURN(OfficialModelConfig config, ReadOfficialModelConfig(options.config));
  const bool text = config.family == OfficialFamily::kText;
  if (text && options.bpe.empty()) {
    return absl::InvalidArgumentError("a text-family checkpoint needs --bpe (bpe_simple_vocab_16e6.txt.gz or merges.txt)");
  }
  std::string vqgan_file = options.vqgan_config.value_or("");
  std::string table_file = options.shrink_table.value_or("");
  if (vqgan_file.empty()) {
    VQD_ASSIGN_OR_RETURN(vqgan_file, FindFileNamedByConfig(config.vqgan_config, options.config, "the VQGAN config"));
  }
  if (table_file.empty()) {
    VQD_ASSIGN_OR_RETURN(table_file, FindFileNamedByConfig(config.shrink_table, options.config, "the shrink table"));
  }
  VQD_ASSIGN_OR_RETURN(TamingVqganConfig vqgan, ReadTamingVqganConfig(vqgan_file));
  if (vqgan.n_embed != config.full_codes) return Mismatch(vqgan_file, "n_embed", vqgan.n_embed, config.full_codes, options.config);
  const bool gumbel_codec = config.codec_target.find("Gumbel") != std::string::npos;
  if (vqgan.gumbel != gumbel_codec) {
    return absl::InvalidArgumentError(absl::StrCat(vqgan_file, ": a ", vqgan.gumbel ? "GumbelVQ" : "VQModel",
                                                   " config for the codec ", config.codec_target));
  }
  const int64_t latent = vqgan.resolution >> (vqgan.ch_mult.size() - 1);
  if (latent != config.content_grid[0] || latent != config.content_grid[1]) {
    return absl::InvalidArgumentError(absl::StrCat(vqgan_file, ": decodes a ", latent, "x", latent,
                                                   " token grid, the transformer's is ", config.content_grid[0], "x",
                                                   config.content_grid[1]));
  }
  VQD_ASSIGN_OR_RETURN(torch::Tensor full_to_quantize, io::ReadTorchBinTensor(table_file));
  if (full_to_quantize.numel() != vqgan.n_embed) {
    return Mismatch(table_file, "the shrink table's length", full_to_quantize.numel(), vqgan.n_embed, vqgan_file);
  }
  VQD_ASSIGN_OR_RETURN(torch::Tensor quantize_to_full, QuantizeToFull(full_to_quantize, config.num_codes, table_file));

  // Only the state dicts official inference uses are read; optimizer state is never loaded.
  std::vector<io::StateDictSelection> selections = {{"model", {"content_codec."}}};
  if (options.use_ema) {
    selections.push_back({"ema", {}});
  } else {
    selections[0].prefixes.push_back("transformer.");
  }
  VQD_ASSIGN_OR_RETURN(auto dicts, io::ReadTorchBinStateDicts(options.checkpoint, selections));
  if (dicts.count("model") == 0) {
    return absl::InvalidArgumentError(absl::StrCat(options.checkpoint, ": no \"model\" state dict: not an official training checkpoint"));
  }
  Converted c;
  io::TensorMap diffusion_transformer;
  if (options.use_ema && dicts.count("ema")) {
    diffusion_transformer = std::move(dicts.at("ema"));
    c.report.weights_from = "ema";
  } else {
    // As the official loader does when a checkpoint has no EMA: the model's own weights.
    if (options.use_ema) {
      spdlog::warn("{}: no \"ema\" state dict; converting the training weights of ckpt[\"model\"]", options.checkpoint);
      VQD_ASSIGN_OR_RETURN(dicts, io::ReadTorchBinStateDicts(options.checkpoint, {{"model", {"content_codec.", "transformer."}}}));
    }
    for (auto& [key, tensor] : dicts.at("model")) {
      if (key.rfind("transformer.", 0) == 0) diffusion_transformer[key.substr(std::string("transformer.").size())] = tensor;
    }
    c.report.weights_from = "model";
  }
  VQD_ASSIGN_OR_RETURN(DiffusionTransformerParts parts, SplitDiffusionTransformer(diffusion_transformer, options.checkpoint));
  const bool weights_text = parts.transformer.count("transformer.blocks.0.attn1.key.weight") != 0;
  const bool weights_class = parts.transformer.count("transformer.blocks.0.attn.key.weight") != 0;
  if (weights_text != text || weights_class == text) {
    return absl::InvalidArgumentError(absl::StrCat(options.checkpoint, ": the weights are a ",
                                                   weights_text ? "text-family" : weights_class ? "class-family" : "unknown",
                                                   " model, but ", options.config, " builds a ",
                                                   text ? "text-family (DALLE)" : "class-family (C_DALLE)", " model"));
  }
  c.report.family = text ? "text" : "class";
  c.report.checkpoint_name = fs::path(options.checkpoint).filename().string();
  if (text) {
    VQD_RETURN_IF_ERROR(ConvertText(config, parts, options, &c));
  } else {
    VQD_RETURN_IF_ERROR(ConvertClass(config, parts, options, &c));
  }
  VQD_ASSIGN_OR_RETURN(torch::Tensor emb, Require(parts.transformer, "transformer.content_emb.emb.weight", 2, options.checkpoint));
  if (c.report.num_layers != config.num_layers) return Mismatch(options.checkpoint, "the block count", c.report.num_layers, config.num_layers, config.path);
  if (emb.size(1) != config.width) return Mismatch(options.checkpoint, "the width", emb.size(1), config.width, config.path);
  if (c.report.codes != config.num_codes) return Mismatch(options.checkpoint, "the codebook size", c.report.codes, config.num_codes, config.path);
  c.report.width = config.width;
  c.report.heads = config.heads;
  int64_t parameters = 0;
  for (const auto& [key, t] : c.transformer) parameters += t.numel();
  c.report.transformer_parameters = parameters;

  // The VQGAN from ckpt["model"] (the frozen codec official inference decodes with), codebook baked.
  const model::VqModelConfig vq = VqModelConfigFor(vqgan, config.num_codes);
  VQD_ASSIGN_OR_RETURN(c.vqvae, VqganWeights(dicts.at("model"), vqgan, quantize_to_full));
  VQD_RETURN_IF_ERROR(CatchTorch("checking the VQGAN", [&] {
    model::VqModel meta(vq, kMeta);
    absl::Status s = Check(*meta, c.vqvae, "vqvae", options.checkpoint);
    TORCH_CHECK(s.ok(), std::string(s.message()));
  }));
  c.vqvae_config = vq.ToJson();

  // The schedules official sampling reads are the checkpoint's buffers, not recomputed ones.
  VQD_ASSIGN_OR_RETURN(diffusion::OfficialSchedule schedule,
                       diffusion::OfficialSchedule::FromTensors(parts.schedule, config.num_codes, options.checkpoint));
  if (schedule.num_timesteps != config.diffusion_steps) {
    return Mismatch(options.checkpoint, "the schedule's length", schedule.num_timesteps, config.diffusion_steps, config.path);
  }
  c.schedule = schedule.ToTensors();
  c.scheduler.num_vec_classes = config.num_codes + 1;
  c.scheduler.num_train_timesteps = config.diffusion_steps;

  const std::string stem = fs::path(options.checkpoint).stem().string();
  std::optional<KnownCheckpoint> known = FindKnownCheckpoint(stem);
  const KnownCheckpoint defaults = known ? *known : DefaultsByKind(text, c.report.learned_null);
  pipeline::ModelMetadata metadata;
  metadata.sampler = pipeline::Sampler::kOfficial;
  metadata.tokenizer_rules = text ? text::TokenizerRules::kOpenAi : text::TokenizerRules::kTransformers;
  metadata.guidance_scale = options.guidance_scale.value_or(defaults.guidance_scale);
  metadata.truncation_rate = options.truncation_rate.value_or(defaults.truncation_rate);
  if (*metadata.truncation_rate <= 0 || *metadata.truncation_rate > 1 || *metadata.guidance_scale < 1) {
    return absl::InvalidArgumentError("the default truncation rate must be in (0, 1] and the guidance scale >= 1");
  }
  c.report.guidance_scale = *metadata.guidance_scale;
  c.report.truncation_rate = *metadata.truncation_rate;
  c.report.defaults_source = options.guidance_scale || options.truncation_rate ? "given to the converter"
                                                                               : defaults.defaults_source;
  metadata.source = {{"checkpoint", c.report.checkpoint_name},
                     {"checkpoint_bytes", io::FileSize(options.checkpoint).value_or(0)},
                     {"known_checkpoint", known ? nlohmann::json(known->name) : nlohmann::json(nullptr)},
                     {"task", defaults.task},
                     {"config", fs::path(options.config).filename().string()},
                     {"vqgan_config", fs::path(vqgan_file).filename().string()},
                     {"shrink_table", fs::path(table_file).filename().string()},
                     {"weights", c.report.weights_from},
                     {"defaults_source", c.report.defaults_source},
                     {"converter", "vqd convert-official"}};
  VQD_RETURN_IF_ERROR(WriteDirectory(c, metadata, options.out));
  return c.report;
}

}  // namespace vqd::convert
