#include "pipeline/vq_diffusion_pipeline.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "base/device_scope.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "io/json_config.h"
#include "io/weights_file.h"
#include "nn/state_dict.h"
#include "pipeline/transformer_runner.h"

namespace vqd::pipeline {
namespace {

absl::StatusOr<io::JsonConfig> LoadConfig(const ModelDirectory& dir, absl::string_view component,
                                          absl::string_view file = "config.json") {
  return io::JsonConfig::Load(absl::StrCat(dir.ComponentDir(component), "/", file));
}

// Reads a component's weights and loads them into `module` (dtype and device conversion included).
absl::Status LoadWeights(const ModelDirectory& dir, absl::string_view component, const std::string& variant,
                         torch::nn::Module& module, nn::LoadOptions load) {
  std::string used_variant;
  VQD_ASSIGN_OR_RETURN(std::string path, dir.WeightsFile(component, variant, &used_variant));
  if (used_variant != variant) {
    spdlog::warn("{}: no {} weights, loading {} instead", std::string(component), variant.empty() ? "full-precision" : "fp16",
                 path);
  }
  VQD_ASSIGN_OR_RETURN(io::TensorMap tensors, io::ReadWeightsFile(path));
  load.component = std::string(component);
  load.file = path;
  return nn::LoadStateDict(module, tensors, load);
}

}  // namespace

absl::StatusOr<std::unique_ptr<VqDiffusionPipeline>> VqDiffusionPipeline::Load(const std::string& model_dir,
                                                                              const PipelineOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  VQD_ASSIGN_OR_RETURN(ModelDirectory dir, ModelDirectory::Open(model_dir));
  std::unique_ptr<VqDiffusionPipeline> p(new VqDiffusionPipeline());
  if (options.device.is_cuda() && options.dtype == torch::kFloat32) UseExactFloat32OnCuda();
  {
    // The copies to the device run on a stream of the loading thread's own; they must be done
    // before another thread's stream uses the weights.
    DeviceScope scope(options.device);
    VQD_RETURN_IF_ERROR(Annotate(p->LoadComponents(dir, options), absl::StrCat("loading model ", model_dir)));
    // The fast path's static buffers and CUDA graphs, before any request (so none pays for them).
    if (absl::Status warm = p->runner_->WarmUp(); !warm.ok()) {
      spdlog::warn("{}: {}", model_dir, std::string(warm.message()));
    }
    p->info_.row_buckets = p->runner_->buckets();
    p->info_.cuda_graphs = p->runner_->graphs_captured();
    VQD_RETURN_IF_ERROR(CatchTorch("waiting for the weights to reach the device", [&] { scope.Synchronize(); }));
  }
  p->info_.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return p;
}

VqDiffusionPipeline::~VqDiffusionPipeline() = default;

namespace {

bool DefaultFused(const PipelineOptions& options) {
  return options.fused.value_or(options.device.is_cuda() && options.dtype != torch::kFloat32);
}

}  // namespace

absl::Status VqDiffusionPipeline::LoadComponents(const ModelDirectory& dir, const PipelineOptions& options) {
  const std::string variant = options.variant.value_or(DefaultVariant(options.dtype));
  const nn::TensorPlacement placement{options.device, options.dtype};
  torch::InferenceMode inference;

  // Configs first, so that a broken directory fails before any large read.
  VQD_ASSIGN_OR_RETURN(io::JsonConfig transformer_json, LoadConfig(dir, "transformer"));
  VQD_ASSIGN_OR_RETURN(model::Transformer2DConfig transformer_config,
                       model::Transformer2DConfig::FromJson(transformer_json));
  VQD_ASSIGN_OR_RETURN(io::JsonConfig vqvae_json, LoadConfig(dir, "vqvae"));
  VQD_ASSIGN_OR_RETURN(model::VqModelConfig vqvae_config, model::VqModelConfig::FromJson(vqvae_json));
  VQD_ASSIGN_OR_RETURN(io::JsonConfig text_json, LoadConfig(dir, "text_encoder"));
  VQD_ASSIGN_OR_RETURN(text::ClipTextConfig text_config, text::ClipTextConfig::FromJson(text_json));
  VQD_ASSIGN_OR_RETURN(io::JsonConfig scheduler_json, LoadConfig(dir, "scheduler", "scheduler_config.json"));
  VQD_ASSIGN_OR_RETURN(diffusion::VqScheduleConfig schedule_config,
                       diffusion::VqScheduleConfig::FromJson(scheduler_json));

  // The components must agree with each other.
  if (schedule_config.num_vec_classes != transformer_config.num_vector_embeds) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scheduler num_vec_classes ", schedule_config.num_vec_classes, " != transformer num_vector_embeds ",
        transformer_config.num_vector_embeds));
  }
  if (vqvae_config.num_vq_embeddings != transformer_config.num_classes()) {
    return absl::InvalidArgumentError(absl::StrCat("vqvae num_vq_embeddings ", vqvae_config.num_vq_embeddings,
                                                   " != transformer classes ", transformer_config.num_classes(),
                                                   " (num_vector_embeds - 1)"));
  }
  if (text_config.hidden_size != transformer_config.cross_attention_dim) {
    return absl::InvalidArgumentError(absl::StrCat("text_encoder hidden_size ", text_config.hidden_size,
                                                   " != transformer cross_attention_dim ",
                                                   transformer_config.cross_attention_dim));
  }
  if (transformer_config.num_embeds_ada_norm < schedule_config.num_train_timesteps) {
    return absl::InvalidArgumentError(absl::StrCat(
        "transformer num_embeds_ada_norm ", transformer_config.num_embeds_ada_norm,
        " is smaller than the scheduler's num_train_timesteps ", schedule_config.num_train_timesteps));
  }

  VQD_ASSIGN_OR_RETURN(text::ClipTokenizer tokenizer, text::ClipTokenizer::Load(dir.ComponentDir("tokenizer")));
  tokenizer_ = std::make_unique<text::ClipTokenizer>(std::move(tokenizer));
  if (tokenizer_->max_length() > text_config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer model_max_length ", tokenizer_->max_length(),
                                                   " exceeds the text encoder's max_position_embeddings ",
                                                   text_config.max_position_embeddings));
  }

  VQD_RETURN_IF_ERROR(CatchTorch("building the modules", [&] {
    text_encoder_ = text::ClipTextModel(text_config, placement);
    transformer_ = model::Transformer2DModel(transformer_config, placement);
    vqvae_ = model::VqModel(vqvae_config, placement);
  }));
  nn::LoadOptions text_load;
  text_load.ignored_keys = text::ClipTextIgnoredKeys();
  text_load.rename = text::RenameClipTextKey;
  VQD_RETURN_IF_ERROR(LoadWeights(dir, "text_encoder", variant, *text_encoder_, text_load));
  VQD_RETURN_IF_ERROR(LoadWeights(dir, "transformer", variant, *transformer_, {}));
  nn::LoadOptions vqvae_load;
  vqvae_load.rename = model::RenameLegacyVaeKey;
  VQD_RETURN_IF_ERROR(LoadWeights(dir, "vqvae", variant, *vqvae_, vqvae_load));
  text_encoder_->eval();
  transformer_->eval();
  vqvae_->eval();
  schedule_ = diffusion::VqSchedule::Build(schedule_config).To(options.device);

  // The unconditional embeddings for guidance.
  bool learned = false;
  if (dir.has_learned_embeddings()) {
    VQD_ASSIGN_OR_RETURN(io::JsonConfig json, LoadConfig(dir, "learned_classifier_free_sampling_embeddings"));
    VQD_ASSIGN_OR_RETURN(learned, json.BoolOr("learnable", false));
    if (learned) {
      VQD_ASSIGN_OR_RETURN(int64_t hidden, json.Int("hidden_size"));
      VQD_ASSIGN_OR_RETURN(int64_t length, json.Int("length"));
      if (hidden != text_config.hidden_size || length != tokenizer_->max_length()) {
        return absl::InvalidArgumentError(absl::StrCat(
            json.path(), ": learned embeddings of ", length, " x ", hidden, " do not match the text encoder (",
            tokenizer_->max_length(), " x ", text_config.hidden_size, ")"));
      }
      torch::nn::Module holder;
      torch::Tensor embeddings = holder.register_parameter("embeddings", torch::empty({length, hidden}, placement.options()), false);
      VQD_RETURN_IF_ERROR(LoadWeights(dir, "learned_classifier_free_sampling_embeddings", variant, holder, {}));
      null_embeddings_ = embeddings.unsqueeze(0);
    }
  } else {
    spdlog::warn(
        "{}: model_index.json has no learned_classifier_free_sampling_embeddings (e.g. the hub's old fp16 "
        "branch); diffusers refuses such a model, this server falls back to guidance with the empty prompt",
        dir.root());
  }

  info_.model_name = dir.name();
  info_.model_dir = dir.root();
  info_.grid_height = transformer_config.sample_size;
  info_.grid_width = transformer_config.sample_size;
  info_.num_latent_pixels = transformer_config.num_latent_pixels();
  info_.codebook_size = transformer_config.num_classes();
  info_.num_train_timesteps = schedule_config.num_train_timesteps;
  info_.image_height = transformer_config.sample_size * vqvae_config.downsample_factor();
  info_.image_width = info_.image_height;
  info_.max_prompt_tokens = tokenizer_->max_length();
  info_.learned_null_embeddings = learned;
  info_.device = options.device;
  info_.dtype = options.dtype;
  info_.transformer_parameters = nn::CountParameters(*transformer_);
  info_.vqvae_parameters = nn::CountParameters(*vqvae_);
  info_.text_encoder_parameters = nn::CountParameters(*text_encoder_);
  info_.fused = DefaultFused(options);

  return CatchTorch("preparing the null context", [&] {
    transformer_->PrepareForInference();
    if (!learned) {
      // Zero-shot guidance: the encoded empty prompt, normalised like any prompt.
      std::vector<int64_t> ids = tokenizer_->EncodeToLength("");
      torch::Tensor input = torch::tensor(ids, torch::kInt64).unsqueeze(0).to(options.device);
      torch::Tensor h = text_encoder_(input);
      null_embeddings_ = h / h.norm(2, -1, /*keepdim=*/true);
    }
    null_context_ = transformer_->ProjectContext(null_embeddings_);
    transformer_->set_fused(info_.fused);
    runner_ = std::make_unique<TransformerRunner>(transformer_, null_context_, options.device, info_.codebook_size,
                                                  info_.fused, options.graph_max_rows, options.cuda_graphs);
  });
}

absl::StatusOr<torch::Tensor> VqDiffusionPipeline::EncodeIds(const torch::Tensor& input_ids) {
  torch::Tensor out;
  VQD_RETURN_IF_ERROR(CatchTorch("encoding prompt ids", [&] {
    torch::InferenceMode inference;
    torch::Tensor h = text_encoder_(input_ids.to(info_.device));
    out = h / h.norm(2, -1, /*keepdim=*/true);
  }));
  return out;
}

absl::StatusOr<std::shared_ptr<const PromptEncoding>> VqDiffusionPipeline::EncodePrompt(absl::string_view prompt) {
  auto encoding = std::make_shared<PromptEncoding>();
  encoding->input_ids =
      tokenizer_->EncodeToLength(std::string_view(prompt.data(), prompt.size()), &encoding->untruncated_length);
  VQD_ASSIGN_OR_RETURN(encoding->embeddings,
                       EncodeIds(torch::tensor(encoding->input_ids, torch::kInt64).unsqueeze(0)));
  VQD_RETURN_IF_ERROR(CatchTorch("projecting the prompt for cross-attention", [&] {
    torch::InferenceMode inference;
    encoding->context = transformer_->ProjectContext(encoding->embeddings);
  }));
  return std::shared_ptr<const PromptEncoding>(std::move(encoding));
}

torch::Tensor VqDiffusionPipeline::MaskedTokens(int64_t n) const {
  return torch::full({n, info_.num_latent_pixels}, info_.codebook_size,
                     torch::TensorOptions().dtype(torch::kInt64).device(info_.device));
}

absl::StatusOr<torch::Tensor> VqDiffusionPipeline::Decode(const torch::Tensor& tokens) {
  if (tokens.dim() != 2 || tokens.size(1) != info_.num_latent_pixels) {
    return absl::InvalidArgumentError(absl::StrCat("token grids must be [B, ", info_.num_latent_pixels, "], got ",
                                                   ShapeString(tokens.sizes())));
  }
  torch::Tensor images;
  VQD_RETURN_IF_ERROR(CatchTorch("decoding token grids", [&] {
    torch::InferenceMode inference;
    torch::Tensor t = tokens.to(info_.device);
    TORCH_CHECK(t.min().item<int64_t>() >= 0 && t.max().item<int64_t>() < info_.codebook_size,
                "token ids must be in [0, ", info_.codebook_size, ") to decode (masked tokens cannot be decoded)");
    torch::Tensor z = vqvae_->Lookup(t, info_.grid_height, info_.grid_width);
    torch::Tensor x = vqvae_->Decode(z);
    x = (x / 2 + 0.5).clamp(0, 1);
    images = x.permute({0, 2, 3, 1}).to(torch::kCPU).to(torch::kFloat32).contiguous();
  }));
  return images;
}

absl::StatusOr<torch::Tensor> VqDiffusionPipeline::EncodeImage(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != info_.image_height || images.size(2) != info_.image_width ||
      images.size(3) != 3) {
    return absl::InvalidArgumentError(absl::StrCat("images must be [B, ", info_.image_height, ", ", info_.image_width,
                                                   ", 3], got ", ShapeString(images.sizes())));
  }
  torch::Tensor tokens;
  VQD_RETURN_IF_ERROR(CatchTorch("encoding images", [&] {
    torch::InferenceMode inference;
    torch::Tensor x = images.to(info_.device).to(info_.dtype).permute({0, 3, 1, 2}) * 2 - 1;
    tokens = vqvae_->EncodeTokens(x);
  }));
  return tokens;
}

torch::Tensor ImagesToUint8(const torch::Tensor& images, torch::Dtype pipeline_dtype) {
  // numpy_to_pil rounds in the array's dtype, which is float16 for a float16 pipeline.
  const torch::Dtype dtype = pipeline_dtype == torch::kFloat16 ? torch::kFloat16 : torch::kFloat32;
  return (images.to(dtype) * 255).round().clamp(0, 255).to(torch::kUInt8);
}

}  // namespace vqd::pipeline
