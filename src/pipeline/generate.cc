#include "pipeline/generate.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "diffusion/gumbel_sampler.h"
#include "diffusion/official_sampling.h"

namespace vqd::pipeline {

absl::Status CheckGuidanceScale(float guidance_scale, const PipelineInfo& info) {
  if (!std::isfinite(guidance_scale) || guidance_scale < 0) {
    return absl::InvalidArgumentError(absl::StrCat("guidance_scale must be finite and >= 0, got ", guidance_scale));
  }
  if (info.sampler == Sampler::kOfficial && guidance_scale < 1.0f && diffusion::OfficialGuides(guidance_scale)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "guidance_scale must be >= 1 for model ", info.model_name,
        " (its official sampler would guide below 1 too, which this server does not serve), got ", guidance_scale));
  }
  return absl::OkStatus();
}

absl::Status ValidateGenerateParams(const GenerateParams& p, const PipelineInfo& info) {
  if (p.num_images < 1) return absl::InvalidArgumentError(absl::StrCat("num_images must be at least 1, got ", p.num_images));
  if (p.steps < 1 || p.steps > info.num_train_timesteps) {
    return absl::InvalidArgumentError(absl::StrCat("steps must be in [1, ", info.num_train_timesteps,
                                                   "] (the model's schedule has ", info.num_train_timesteps,
                                                   " steps), got ", p.steps));
  }
  VQD_RETURN_IF_ERROR(CheckGuidanceScale(p.guidance_scale, info));
  if (!(p.truncation_rate > 0.0f && p.truncation_rate <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("truncation_rate must be in (0, 1], got ", p.truncation_rate));
  }
  return absl::OkStatus();
}

absl::StatusOr<GenerateResult> Generate(VqDiffusionPipeline& pipeline, const GenerateParams& params,
                                        const StepObserver& observer, bool keep_step_tokens) {
  const PipelineInfo& info = pipeline.info();
  VQD_RETURN_IF_ERROR(ValidateGenerateParams(params, info));
  VQD_ASSIGN_OR_RETURN(std::shared_ptr<const PromptEncoding> prompt,
                       pipeline.EncodeCondition(params.prompt, params.class_label));

  GenerateResult result;
  torch::Generator generator;
  VQD_RETURN_IF_ERROR(CatchTorch("creating the generator", [&] {
    generator = diffusion::MakeGenerator(info.device, params.seed);
  }));
  SampleGroup group;
  group.prompt = prompt;
  group.tokens = pipeline.MaskedTokens(params.num_images);
  group.guidance_scale = params.guidance_scale;
  group.truncation_rate = params.truncation_rate;
  group.generator = &generator;
  std::vector<SampleGroup*> batch = {&group};
  for (int64_t i = 0; i < params.steps; ++i) {
    group.timestep = TimestepAt(params.steps, i);
    group.log_p_x_0_out = i == 0 ? &result.first_log_p_x_0 : nullptr;
    VQD_RETURN_IF_ERROR(Annotate(pipeline.DenoiseStep(batch), absl::StrCat("step ", i)));
    if (keep_step_tokens) result.step_tokens.push_back(group.tokens.to(torch::kCPU));
    if (observer) observer(i, group.timestep, group.tokens);
  }
  if (result.first_log_p_x_0.defined()) result.first_log_p_x_0 = result.first_log_p_x_0.to(torch::kCPU);
  result.tokens = group.tokens.to(torch::kCPU);
  VQD_ASSIGN_OR_RETURN(result.images, pipeline.Decode(group.tokens));
  return result;
}

}  // namespace vqd::pipeline
