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

absl::StatusOr<int64_t> StepsForStride(std::optional<int64_t> requested_steps, int64_t time_stride,
                                       const PipelineInfo& info, int64_t chain) {
  const int64_t T = info.num_train_timesteps;
  if (time_stride < 1 || time_stride > T) {
    return absl::InvalidArgumentError(absl::StrCat("time_stride must be in [1, ", T, "] (the model's schedule has ", T,
                                                   " steps), got ", time_stride));
  }
  if (chain > 0) {  // an edit: its chain's timesteps, all of them
    const int64_t steps = time_stride > 1 ? diffusion::StridedStepCount(chain, time_stride) : chain;
    if (requested_steps && *requested_steps != steps) {
      return absl::InvalidArgumentError(absl::StrCat("steps is ", *requested_steps, " but an edit of this strength",
                                                     time_stride > 1 ? " and time_stride" : "", " runs ", steps,
                                                     " steps from timestep ", chain - 1,
                                                     "; leave steps unset or set it to ", steps));
    }
    return steps;
  }
  if (time_stride == 1) {
    const int64_t steps = requested_steps.value_or(T);
    if (steps < 1 || steps > T) {
      return absl::InvalidArgumentError(
          absl::StrCat("steps must be in [1, ", T, "] (the model's schedule has ", T, " steps), got ", steps));
    }
    return steps;
  }
  const int64_t strided = diffusion::StridedStepCount(T, time_stride);
  if (requested_steps && *requested_steps != strided) {
    return absl::InvalidArgumentError(absl::StrCat("steps is ", *requested_steps, " but time_stride ", time_stride,
                                                   " visits ", strided, " timesteps of the ", T,
                                                   "-step schedule; leave steps unset or set it to ", strided));
  }
  return strided;
}

std::vector<diffusion::PlannedStep> PlanSteps(int64_t steps, int64_t time_stride, const PipelineInfo& info,
                                              int64_t chain) {
  const int64_t top = chain > 0 ? chain : info.num_train_timesteps;
  std::vector<diffusion::PlannedStep> plan = time_stride > 1 ? diffusion::StridedPlan(top, time_stride)
                                                             : diffusion::ContiguousPlan(chain > 0 ? chain : steps);
  diffusion::AssignUnmaskCounts(plan, info.num_train_timesteps, info.num_latent_pixels);
  return plan;
}

absl::Status CheckPrior(diffusion::PriorRule rule, float prior_weight) {
  if (!std::isfinite(prior_weight) || prior_weight < 0) {
    return absl::InvalidArgumentError(absl::StrCat("prior_weight must be finite and >= 0, got ", prior_weight));
  }
  if (prior_weight > 0 && rule != diffusion::PriorRule::kPurity) {
    return absl::InvalidArgumentError(absl::StrCat("prior_weight ", prior_weight,
                                                   " only applies to the purity prior rule, not to ",
                                                   diffusion::PriorRuleName(rule)));
  }
  return absl::OkStatus();
}

absl::Status ValidateGenerateParams(const GenerateParams& p, const PipelineInfo& info) {
  if (p.num_images < 1) return absl::InvalidArgumentError(absl::StrCat("num_images must be at least 1, got ", p.num_images));
  if (p.preview_interval < 0) {
    return absl::InvalidArgumentError(absl::StrCat("preview_interval must be >= 0, got ", p.preview_interval));
  }
  int64_t chain = 0;
  if (p.edit) {
    VQD_ASSIGN_OR_RETURN(chain, EditChainLength(p.edit->strength, info));
  }
  VQD_RETURN_IF_ERROR(StepsForStride(p.steps, p.time_stride, info, chain).status());
  VQD_RETURN_IF_ERROR(CheckGuidanceScale(p.guidance_scale, info));
  VQD_RETURN_IF_ERROR(CheckPrior(p.prior_rule, p.prior_weight));
  if (!(p.truncation_rate > 0.0f && p.truncation_rate <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("truncation_rate must be in (0, 1], got ", p.truncation_rate));
  }
  return absl::OkStatus();
}

absl::StatusOr<GenerateResult> Generate(VqDiffusionPipeline& pipeline, const GenerateParams& params,
                                        const StepObserver& observer, bool keep_step_tokens,
                                        const PreviewObserver& previews) {
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
  group.prior_rule = params.prior_rule;
  group.prior_weight = params.prior_weight;
  const int64_t chain = params.edit ? *EditChainLength(params.edit->strength, info) : 0;
  const std::vector<diffusion::PlannedStep> plan = PlanSteps(params.steps, params.time_stride, info, chain);
  if (params.edit) {
    VQD_ASSIGN_OR_RETURN(EditStart start,
                         PrepareEdit(pipeline, *params.edit, params.num_images, plan.front().timestep, generator));
    group.tokens = start.tokens;
    group.known_tokens = start.known_tokens;
    group.known = start.known;
  }
  for (int64_t i = 0; i < static_cast<int64_t>(plan.size()); ++i) {
    group.timestep = plan[static_cast<size_t>(i)].timestep;
    group.posterior_timestep = plan[static_cast<size_t>(i)].posterior_timestep;
    group.unmask_count = plan[static_cast<size_t>(i)].unmask_count;
    group.log_p_x_0_out = i == 0 ? &result.first_log_p_x_0 : nullptr;
    torch::Tensor x0_argmax;
    const bool preview = previews && PreviewDue(params.preview_interval, i + 1, static_cast<int64_t>(plan.size()));
    group.x0_argmax_out = preview ? &x0_argmax : nullptr;
    VQD_RETURN_IF_ERROR(Annotate(pipeline.DenoiseStep(batch), absl::StrCat("step ", i)));
    if (preview) {
      VQD_ASSIGN_OR_RETURN(PreviewImages images,
                           RenderPreviews(pipeline, PreviewTokens(group.tokens, x0_argmax, info.codebook_size)));
      previews(i + 1, group.timestep, images);
    }
    if (keep_step_tokens) result.step_tokens.push_back(group.tokens.to(torch::kCPU));
    if (observer) observer(i, group.timestep, group.tokens);
  }
  if (result.first_log_p_x_0.defined()) result.first_log_p_x_0 = result.first_log_p_x_0.to(torch::kCPU);
  result.tokens = group.tokens.to(torch::kCPU);
  VQD_ASSIGN_OR_RETURN(result.images, pipeline.Decode(group.tokens));
  return result;
}

}  // namespace vqd::pipeline
