// VqDiffusionPipeline::DenoiseStep: one transformer pass for a batch of sample groups.
#include <numeric>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "diffusion/gumbel_sampler.h"
#include "diffusion/guidance.h"
#include "diffusion/kernels/posterior_gumbel.h"
#include "diffusion/truncation.h"
#include "pipeline/batch_rows.h"
#include "pipeline/step_upload.h"
#include "pipeline/transformer_runner.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace vqd::pipeline {
namespace {

// Inpainting: the positions outside the mask go back to the encoded image after every step.
void HoldKnownTokens(std::vector<SampleGroup*>& groups) {
  for (SampleGroup* g : groups) {
    if (g->known.defined()) g->tokens = torch::where(g->known, g->known_tokens, g->tokens);
  }
}

absl::Status CheckGroup(const SampleGroup& g, const PipelineInfo& info) {
  if (!g.prompt || g.generator == nullptr) return absl::InvalidArgumentError("sample group lacks a prompt or generator");
  if (g.tokens.dim() != 2 || g.tokens.size(0) < 1 || g.tokens.size(1) != info.num_latent_pixels) {
    return absl::InvalidArgumentError(absl::StrCat("sample tokens must be [n, ", info.num_latent_pixels, "], got ",
                                                   ShapeString(g.tokens.sizes())));
  }
  if (g.timestep < 0 || g.timestep >= info.num_train_timesteps) {
    return absl::InvalidArgumentError(
        absl::StrCat("timestep ", g.timestep, " outside [0, ", info.num_train_timesteps, ")"));
  }
  if (g.posterior_t() < 0 || g.posterior_t() > g.timestep) {
    return absl::InvalidArgumentError(
        absl::StrCat("posterior timestep ", g.posterior_t(), " outside [0, ", g.timestep, "] (the step's timestep)"));
  }
  if (!(g.truncation_rate > 0.0f && g.truncation_rate <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("truncation rate ", g.truncation_rate, " outside (0, 1]"));
  }
  if (!std::isfinite(g.guidance_scale)) return absl::InvalidArgumentError("guidance scale is not finite");
  if (g.known.defined() && (g.known.sizes() != g.tokens.sizes() || g.known_tokens.sizes() != g.tokens.sizes())) {
    return absl::InvalidArgumentError("sample group's known tokens do not match its tokens' shape");
  }
  if (!(g.prior_weight >= 0.0f && std::isfinite(g.prior_weight)) || g.unmask_count < 0) {
    return absl::InvalidArgumentError(absl::StrCat("prior weight ", g.prior_weight, " or unmask count ",
                                                   g.unmask_count, " is negative or not finite"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status VqDiffusionPipeline::DenoiseStep(std::vector<SampleGroup*>& groups) {
  if (groups.empty()) return absl::OkStatus();
  for (const SampleGroup* g : groups) VQD_RETURN_IF_ERROR(CheckGroup(*g, info_));
  return CatchTorch("denoising step", [&] {
    torch::InferenceMode inference;
    const torch::Device device = info_.device;
    const BatchRows rows = BuildRows(groups);
    // Every per-row value this step needs goes to the device in one non-blocking copy.
    std::vector<float> scales, rates;
    std::vector<int64_t> posterior_t;
    for (const SampleGroup* g : groups) {
      const size_t n = static_cast<size_t>(g->tokens.size(0));
      if (g->guided()) scales.insert(scales.end(), n, g->guidance_scale);
      rates.insert(rates.end(), n, g->truncation_rate);
      const bool prior_step = g->prior_rule != diffusion::PriorRule::kNone && g->timestep > 0;
      if (g->posterior_t() > 0 && !prior_step) posterior_t.insert(posterior_t.end(), n, g->posterior_t());
    }
    StepUpload upload(device);
    const size_t guided_id = upload.Add(rows.guided_images), scales_id = upload.Add(scales),
                 rates_id = upload.Add(rates), posterior_t_id = upload.Add(posterior_t);
    torch::Tensor log_p;  // [R, K, N] float32
    if (runner_) {  // text models: the reference or the fast path
      const TransformerRunner::Pass pass = runner_->Prepare(rows.pieces, upload);
      upload.Upload();
      log_p = runner_->Run(pass, upload);
    } else {  // class-conditional models
      const DenoiserRows input = ForDenoiser(rows);
      const size_t timesteps_id = upload.Add(input.timesteps);
      upload.Upload();
      log_p = denoiser_->LogProbs(input.tokens, upload.Int64(timesteps_id), input.runs);
    }
    if (info_.sampler == Sampler::kOfficial) {
      OfficialSampleStep(groups, rows.uncond_rows, log_p);
      HoldKnownTokens(groups);
      return;
    }
    const int64_t num_images = log_p.size(0) - rows.uncond_rows;
    torch::Tensor x0 = log_p.narrow(0, rows.uncond_rows, num_images);  // conditional rows = one per image
    if (rows.uncond_rows > 0) {
      torch::Tensor idx = upload.Int64(guided_id);
      torch::Tensor guided = diffusion::ApplyGuidance(log_p.narrow(0, 0, rows.uncond_rows), x0.index_select(0, idx),
                                                      upload.Float(scales_id));
      x0 = x0.index_copy(0, idx, guided);
    }
    x0 = diffusion::Truncate(x0, upload.Float(rates_id)).clamp_min(diffusion::kLogProbFloor);

    // Sample each group from its own generator, in the shape diffusers draws for that request.
    int64_t offset = 0;
    std::vector<torch::Tensor> posterior_logp, posterior_xt;  // the t > 0 groups, batched
    std::vector<torch::Tensor> uniforms;                                   // parallel to posterior_*
    std::vector<SampleGroup*> posterior_groups;
    for (SampleGroup* g : groups) {
      const int64_t n = g->tokens.size(0);
      torch::Tensor group_x0 = x0.narrow(0, offset, n);
      offset += n;
      if (g->log_p_x_0_out) *g->log_p_x_0_out = group_x0.clone();
      if (g->x0_argmax_out) *g->x0_argmax_out = group_x0.argmax(1);
      if (g->prior_rule != diffusion::PriorRule::kNone && g->timestep > 0) {
        g->tokens = diffusion::PriorUnmaskStep(group_x0, g->tokens, info_.codebook_size, g->prior_rule,
                                               g->prior_weight, g->unmask_count, *g->generator);
        continue;
      }
      if (g->posterior_t() == 0) {
        torch::Tensor u = diffusion::DrawUniform(*g->generator, group_x0.sizes(), device);
        g->tokens = diffusion::SampleX0(group_x0, u, info_.fused);
        continue;
      }
      posterior_logp.push_back(group_x0);
      posterior_xt.push_back(g->tokens);
      uniforms.push_back(diffusion::DrawUniform(
          *g->generator, {n, info_.codebook_size + 1, info_.num_latent_pixels}, device));
      posterior_groups.push_back(g);
    }
    if (posterior_groups.empty()) {
      HoldKnownTokens(groups);
      return;
    }
    // All groups past t = 0 (the usual case): x0 is theirs already, no copy.
    torch::Tensor logp_all = posterior_groups.size() == groups.size() ? x0 : torch::cat(posterior_logp, 0);
    torch::Tensor sampled = diffusion::SamplePosterior(schedule_, logp_all, torch::cat(posterior_xt, 0),
                                                       upload.Int64(posterior_t_id), torch::cat(uniforms, 0),
                                                       info_.fused);  // [B', N]
    offset = 0;
    for (SampleGroup* g : posterior_groups) {
      const int64_t n = g->tokens.size(0);
      g->tokens = sampled.narrow(0, offset, n);
      offset += n;
    }
    HoldKnownTokens(groups);
  });
}

}  // namespace vqd::pipeline
