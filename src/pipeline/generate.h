// One whole generation in a single call, as VQDiffusionPipeline.__call__: the offline tool and the
// parity tests use it; the server's engine drives the same steps interleaved with other requests.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "diffusion/prior_sampling.h"
#include "diffusion/sampling_plan.h"
#include "pipeline/edit_start.h"
#include "pipeline/preview.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace vqd::pipeline {

struct GenerateParams {
  std::string prompt;
  std::optional<int64_t> class_label;  // class-conditional models, instead of the prompt
  int64_t num_images = 1;
  int64_t steps = 100;            // runs timesteps steps-1 ... 0 of the training schedule (no stride)
  // > 1: the official strided fast sampler over the whole schedule (diffusion/sampling_plan.h);
  // `steps` must then be StridedStepCount(T, time_stride) (StepsForStride gives it).
  int64_t time_stride = 1;
  // Fixed-count unmasking (Improved VQ-Diffusion; diffusion/prior_sampling.h): kNone is the plain
  // posterior; prior_weight (>= 0) sharpens confident positions under kPurity.
  diffusion::PriorRule prior_rule = diffusion::PriorRule::kNone;
  float prior_weight = 0.0f;
  // Editing and inpainting (pipeline/edit_start.h): start from this image instead of all masks.
  std::shared_ptr<const EditInput> edit;
  int64_t preview_interval = 0;  // > 0: a preview (pipeline/preview.h) after every that many steps
  float guidance_scale = 5.0f;    // > 1 enables classifier-free guidance
  float truncation_rate = 1.0f;   // (0, 1]
  uint64_t seed = 0;              // seeds one generator on the pipeline's device for the whole call
};

// Checks the parameters against the model; the message names the field and the allowed range.
absl::Status ValidateGenerateParams(const GenerateParams& params, const PipelineInfo& info);

// The guidance scale's range for a model: finite and >= 0. Models served with the official sampler
// also refuse scales below 1 (beyond the official code's 1e-3 tolerance): the official code would
// guide there, and this pipeline batches guidance only above 1. The message names the field.
absl::Status CheckGuidanceScale(float guidance_scale, const PipelineInfo& info);

// Timestep of step `index` (0-based) of a request with `steps` steps: steps - 1 - index.
inline int64_t TimestepAt(int64_t steps, int64_t index) { return steps - 1 - index; }

// The steps a request takes with `time_stride` (1: `requested_steps`, or the whole schedule when
// unset; > 1: the strided plan's length, which a requested count must equal). An edit (`chain` > 0,
// EditChainLength) runs its chain's timesteps chain-1 ... 0, strided or not, and a requested count
// must equal that too. The message names the fields and the allowed values.
absl::StatusOr<int64_t> StepsForStride(std::optional<int64_t> requested_steps, int64_t time_stride,
                                       const PipelineInfo& info, int64_t chain = 0);

// What each step of a validated request visits: timesteps steps-1 ... 0 (time_stride 1), or the
// strided plan over the whole schedule (or over an edit's chain); each with the tokens fixed-count
// sampling unmasks there.
std::vector<diffusion::PlannedStep> PlanSteps(int64_t steps, int64_t time_stride, const PipelineInfo& info,
                                              int64_t chain = 0);

// prior_weight's range (finite, >= 0, and 0 unless the rule is purity); the message names the field.
absl::Status CheckPrior(diffusion::PriorRule rule, float prior_weight);

struct GenerateResult {
  torch::Tensor tokens;                   // [n, N] int64, CPU: the final grids
  torch::Tensor images;                   // [n, H, W, 3] float32 in [0, 1], CPU
  std::vector<torch::Tensor> step_tokens;  // with keep_step_tokens: [n, N] after every step, CPU
  torch::Tensor first_log_p_x_0;          // [n, K, N]: the first step's guided, truncated log-probs
};

// Called after each step with the step index, its timestep and the new grids (on the device).
using StepObserver = std::function<void(int64_t step_index, int64_t timestep, const torch::Tensor& tokens)>;
// Called with each preview that params.preview_interval asks for (step 1-based).
using PreviewObserver = std::function<void(int64_t step, int64_t timestep, const PreviewImages& previews)>;

absl::StatusOr<GenerateResult> Generate(VqDiffusionPipeline& pipeline, const GenerateParams& params,
                                        const StepObserver& observer = {}, bool keep_step_tokens = false,
                                        const PreviewObserver& previews = {});

}  // namespace vqd::pipeline
