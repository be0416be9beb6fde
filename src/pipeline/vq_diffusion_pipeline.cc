#include "pipeline/vq_diffusion_pipeline.h"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "base/device_scope.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "diffusion/gumbel_sampler.h"
#include "diffusion/q_posterior.h"
#include "io/json_config.h"
#include "io/weights_file.h"
#include "nn/state_dict.h"
#include "pipeline/component_loading.h"
#include "pipeline/transformer_runner.h"

namespace vqd::pipeline {

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
    if (p->runner_) {
      if (absl::Status warm = p->runner_->WarmUp(); !warm.ok()) {
        spdlog::warn("{}: {}", model_dir, std::string(warm.message()));
      }
      p->info_.row_buckets = p->runner_->buckets();
      p->info_.cuda_graphs = p->runner_->graphs_captured();
    }
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
  VQD_ASSIGN_OR_RETURN(io::JsonConfig vqvae_json, LoadComponentConfig(dir, "vqvae"));
  VQD_ASSIGN_OR_RETURN(model::VqModelConfig vqvae_config, model::VqModelConfig::FromJson(vqvae_json));
  VQD_ASSIGN_OR_RETURN(io::JsonConfig scheduler_json, LoadComponentConfig(dir, "scheduler", "scheduler_config.json"));
  VQD_ASSIGN_OR_RETURN(diffusion::VqScheduleConfig schedule_config,
                       diffusion::VqScheduleConfig::FromJson(scheduler_json));

  if (dir.conditioning() == Conditioning::kClassLabel) {
    VQD_ASSIGN_OR_RETURN(class_, ClassDenoiser::Load(dir, placement, variant));
    denoiser_ = class_.get();
  } else {
    VQD_ASSIGN_OR_RETURN(text_, TextDenoiser::Load(dir, placement, variant));
    denoiser_ = text_.get();
  }
  const std::string transformer_name = class_ ? "class_transformer" : "transformer";

  // The components must agree with each other.
  if (schedule_config.num_vec_classes != denoiser_->num_vector_embeds()) {
    return absl::InvalidArgumentError(absl::StrCat("scheduler num_vec_classes ", schedule_config.num_vec_classes, " != ",
                                                   transformer_name, " num_vector_embeds ",
                                                   denoiser_->num_vector_embeds()));
  }
  // A larger codebook than the transformer's classes decodes every token the transformer can
  // produce (diffusers' own fast tests pair 12 codes with 11 classes); a smaller one cannot.
  if (vqvae_config.num_vq_embeddings < denoiser_->num_vector_embeds() - 1) {
    return absl::InvalidArgumentError(absl::StrCat("vqvae num_vq_embeddings ", vqvae_config.num_vq_embeddings,
                                                   " is smaller than ", transformer_name, " classes ",
                                                   denoiser_->num_vector_embeds() - 1, " (num_vector_embeds - 1)"));
  }
  // The transformer embeds timesteps below num_embeds_ada_norm only: a smaller table than the
  // schedule (diffusers' fast tests: 12 against 100) limits requests to its first timesteps.
  const int64_t usable_timesteps = std::min(denoiser_->num_embeds_ada_norm(), schedule_config.num_train_timesteps);
  if (usable_timesteps < schedule_config.num_train_timesteps) {
    spdlog::warn("{} num_embeds_ada_norm {} is smaller than the scheduler's num_train_timesteps {}: requests may use "
                 "timesteps 0..{} only",
                 transformer_name, denoiser_->num_embeds_ada_norm(), schedule_config.num_train_timesteps,
                 usable_timesteps - 1);
  }

  VQD_RETURN_IF_ERROR(CatchTorch("building the VQ-VAE", [&] { vqvae_ = model::VqModel(vqvae_config, placement); }));
  nn::LoadOptions vqvae_load;
  vqvae_load.rename = model::RenameLegacyVaeKey;
  VQD_RETURN_IF_ERROR(LoadComponentWeights(dir, "vqvae", variant, *vqvae_, vqvae_load));
  vqvae_->eval();
  schedule_ = diffusion::VqSchedule::Build(schedule_config).To(options.device);

  const ModelMetadata& metadata = dir.metadata();
  if (metadata.sampler == Sampler::kOfficial) {
    const std::string path = absl::StrCat(dir.ComponentDir("scheduler"), "/", kOfficialScheduleFile);
    VQD_ASSIGN_OR_RETURN(io::TensorMap buffers, io::ReadWeightsFile(path));
    VQD_ASSIGN_OR_RETURN(diffusion::OfficialSchedule official,
                         diffusion::OfficialSchedule::FromTensors(buffers, denoiser_->num_vector_embeds() - 1, path));
    if (official.num_timesteps != schedule_config.num_train_timesteps) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", official.num_timesteps, " timesteps, the scheduler has ",
                                                     schedule_config.num_train_timesteps));
    }
    official_schedule_ = official.To(options.device);
  }

  info_.model_name = dir.name();
  info_.model_dir = dir.root();
  info_.grid_height = denoiser_->grid_height();
  info_.grid_width = denoiser_->grid_width();
  info_.num_latent_pixels = info_.grid_height * info_.grid_width;
  info_.codebook_size = denoiser_->num_vector_embeds() - 1;
  info_.num_train_timesteps = usable_timesteps;
  info_.image_height = info_.grid_height * vqvae_config.downsample_factor();
  info_.image_width = info_.grid_width * vqvae_config.downsample_factor();
  info_.conditioning = dir.conditioning();
  info_.sampler = metadata.sampler;
  if (metadata.guidance_scale) info_.default_guidance_scale = static_cast<float>(*metadata.guidance_scale);
  if (metadata.truncation_rate) info_.default_truncation_rate = static_cast<float>(*metadata.truncation_rate);
  if (text_) {
    info_.max_prompt_tokens = text_->tokenizer().max_length();
    info_.learned_null_embeddings = text_->learned_null_embeddings();
    info_.text_encoder_parameters = nn::CountParameters(*text_->text_encoder());
  } else {
    const model::ClassTransformerConfig& c = class_->transformer()->config();
    info_.num_classes = c.num_classes;
    info_.learned_null_embeddings = c.null_class_mode == "row";
  }
  info_.device = options.device;
  info_.dtype = options.dtype;
  info_.transformer_parameters = denoiser_->transformer_parameters();
  info_.vqvae_parameters = nn::CountParameters(*vqvae_);
  // The fast path and its row buckets serve text models' Transformer2DModel; the class
  // transformer of the ImageNet models runs the reference path.
  info_.fused = text_ != nullptr && DefaultFused(options);
  if (text_) {
    VQD_RETURN_IF_ERROR(CatchTorch("preparing the transformer runner", [&] {
      text_->transformer()->set_fused(info_.fused);
      runner_ = std::make_unique<TransformerRunner>(text_->transformer(), text_->null_context(), options.device,
                                                    info_.codebook_size, info_.fused, options.graph_max_rows,
                                                    options.cuda_graphs);
    }));
  }
  return absl::OkStatus();
}

TextDenoiser& VqDiffusionPipeline::text() const {
  TORCH_CHECK(text_ != nullptr, "model ", info_.model_name, " is class-conditional; it has no text components");
  return *text_;
}

model::ClassTransformer& VqDiffusionPipeline::class_transformer() {
  TORCH_CHECK(class_ != nullptr, "model ", info_.model_name, " is conditioned on text; it has no class transformer");
  return class_->transformer();
}

const diffusion::OfficialSchedule& VqDiffusionPipeline::official_schedule() const {
  TORCH_CHECK(official_schedule_.has_value(), "model ", info_.model_name, " does not use the official sampler");
  return *official_schedule_;
}

TransformerRunner& VqDiffusionPipeline::transformer_runner() {
  TORCH_CHECK(runner_ != nullptr, "model ", info_.model_name, " is class-conditional; it has no transformer runner");
  return *runner_;
}

absl::StatusOr<torch::Tensor> VqDiffusionPipeline::EncodeIds(const torch::Tensor& input_ids) {
  if (!text_) return absl::FailedPreconditionError(absl::StrCat("model ", info_.model_name, " has no text encoder"));
  return text_->EncodeIds(input_ids);
}

absl::StatusOr<std::shared_ptr<const PromptEncoding>> VqDiffusionPipeline::EncodePrompt(absl::string_view prompt) {
  return EncodeCondition(prompt, std::nullopt);
}

absl::StatusOr<std::shared_ptr<const PromptEncoding>> VqDiffusionPipeline::EncodeClassLabel(int64_t label) {
  return EncodeCondition("", label);
}

absl::StatusOr<std::shared_ptr<const PromptEncoding>> VqDiffusionPipeline::EncodeCondition(
    absl::string_view prompt, std::optional<int64_t> class_label) {
  if (class_) {
    if (!prompt.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt: model ", info_.model_name, " is class-conditional and takes no prompt; send class_label (in [0, ",
          info_.num_classes, "))"));
    }
    if (!class_label) {
      return absl::InvalidArgumentError(absl::StrCat("class_label: model ", info_.model_name,
                                                     " is class-conditional and needs a class label in [0, ",
                                                     info_.num_classes, ")"));
    }
    return class_->EncodeClassLabel(*class_label);
  }
  if (class_label) {
    return absl::InvalidArgumentError(absl::StrCat("class_label: model ", info_.model_name,
                                                   " is conditioned on text; send a prompt, not a class label"));
  }
  return text_->EncodePrompt(prompt);
}

torch::Tensor VqDiffusionPipeline::MaskedTokens(int64_t n) const {
  return torch::full({n, info_.num_latent_pixels}, info_.codebook_size,
                     torch::TensorOptions().dtype(torch::kInt64).device(info_.device));
}

absl::StatusOr<torch::Tensor> VqDiffusionPipeline::NoiseTokens(const torch::Tensor& x_0, int64_t t,
                                                               torch::Generator& generator) {
  if (x_0.dim() != 2 || x_0.size(1) != info_.num_latent_pixels || t < 0 || t >= info_.num_train_timesteps) {
    return absl::InvalidArgumentError(absl::StrCat("noising needs tokens [n, ", info_.num_latent_pixels,
                                                   "] and t in [0, ", info_.num_train_timesteps, "), got ",
                                                   ShapeString(x_0.sizes()), " and ", t));
  }
  torch::Tensor x_t;
  VQD_RETURN_IF_ERROR(CatchTorch("noising the encoded image", [&] {
    torch::InferenceMode inference;
    const torch::Tensor log_q = diffusion::LogQXtGivenX0(schedule_, x_0.to(info_.device), t);
    x_t = diffusion::GumbelArgmax(log_q, diffusion::DrawUniform(generator, log_q.sizes(), info_.device));
  }));
  return x_t;
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
  if (!tokens.defined() || tokens.numel() == 0) return tokens;
  const int64_t largest = tokens.max().item<int64_t>();
  if (largest >= info_.codebook_size) {
    return absl::InvalidArgumentError(absl::StrCat("the image encodes to code ", largest, ", which the transformer's ",
                                                   info_.codebook_size, " classes cannot hold"));
  }
  return tokens;
}

torch::Tensor ImagesToUint8(const torch::Tensor& images, torch::Dtype pipeline_dtype) {
  // numpy_to_pil rounds in the array's dtype, which is float16 for a float16 pipeline.
  const torch::Dtype dtype = pipeline_dtype == torch::kFloat16 ? torch::kFloat16 : torch::kFloat32;
  return (images.to(dtype) * 255).round().clamp(0, 255).to(torch::kUInt8);
}

}  // namespace vqd::pipeline
