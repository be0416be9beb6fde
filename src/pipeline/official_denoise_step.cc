// VqDiffusionPipeline::OfficialSampleStep: what follows the transformer pass for the models
// converted from the official checkpoints, in the official code's arithmetic (spec section 9.6):
// predict_start's clamp, cf_predict_start's guidance, the truncation wrapper, q_posterior and the
// Gumbel sample over K + 1 classes at every t. Each group draws torch.rand_like of [n, K + 1, N]
// from its own generator, as the official script draws from the global one, so that a seeded
// request reproduces the official run with the same seed and batch size.
#include <vector>

#include "diffusion/gumbel_sampler.h"
#include "diffusion/official_sampling.h"
#include "diffusion/prior_sampling.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace vqd::pipeline {

void VqDiffusionPipeline::OfficialSampleStep(std::vector<SampleGroup*>& groups, int64_t uncond_rows,
                                             const torch::Tensor& log_p) {
  const torch::Device device = info_.device;
  const torch::Tensor clamped = diffusion::OfficialClamp(log_p);  // predict_start, mask row not yet added
  const int64_t num_images = log_p.size(0) - uncond_rows;
  torch::Tensor x0 = clamped.narrow(0, uncond_rows, num_images);

  // Guidance for the groups the official code guides (|s - 1| >= 1e-3). A group with guidance
  // rows but a scale that close to 1 keeps its conditional prediction, as the official code does.
  std::vector<int64_t> uncond_index, image_index;
  std::vector<float> scales;
  int64_t uncond = 0, image = 0;
  for (const SampleGroup* g : groups) {
    const int64_t n = g->tokens.size(0);
    if (g->guided()) {
      if (diffusion::OfficialGuides(g->guidance_scale)) {
        for (int64_t i = 0; i < n; ++i) {
          uncond_index.push_back(uncond + i);
          image_index.push_back(image + i);
          scales.push_back(g->guidance_scale);
        }
      }
      uncond += n;
    }
    image += n;
  }
  if (!image_index.empty()) {
    const torch::Tensor images = torch::tensor(image_index, torch::kInt64).to(device);
    const torch::Tensor guided = diffusion::OfficialGuidance(
        clamped.index_select(0, torch::tensor(uncond_index, torch::kInt64).to(device)), x0.index_select(0, images),
        torch::tensor(scales).to(device));
    x0 = x0.index_copy(0, images, guided);
  }
  std::vector<float> rates;
  for (const SampleGroup* g : groups) rates.insert(rates.end(), g->tokens.size(0), g->truncation_rate);
  x0 = diffusion::OfficialTruncate(diffusion::AppendMaskRow(x0), torch::tensor(rates).to(device));  // [B, K+1, N]

  // Fixed-count groups (p_sample with prior_rule > 0, t > 0) step on their own; the rest share the
  // posterior.
  std::vector<torch::Tensor> x_t, uniforms, posterior_x0;
  std::vector<int64_t> posterior_timesteps;
  std::vector<SampleGroup*> posterior_groups;
  int64_t offset = 0;
  for (size_t i = 0; i < groups.size(); ++i) {
    SampleGroup* g = groups[i];
    const int64_t n = g->tokens.size(0);
    const torch::Tensor group_x0 = x0.narrow(0, offset, n);
    if (g->log_p_x_0_out) *g->log_p_x_0_out = group_x0.clone();
    if (g->x0_argmax_out) *g->x0_argmax_out = group_x0.narrow(1, 0, info_.codebook_size).argmax(1);
    offset += n;
    if (g->prior_rule != diffusion::PriorRule::kNone && g->timestep > 0) {
      g->tokens = diffusion::PriorUnmaskStep(group_x0, g->tokens, info_.codebook_size, g->prior_rule,
                                             g->prior_weight, g->unmask_count, *g->generator);
      continue;
    }
    posterior_x0.push_back(group_x0);
    posterior_timesteps.insert(posterior_timesteps.end(), static_cast<size_t>(n), g->posterior_t());
    x_t.push_back(g->tokens);
    uniforms.push_back(diffusion::DrawUniform(*g->generator, {n, x0.size(1), x0.size(2)}, device));
    posterior_groups.push_back(g);
  }
  if (posterior_groups.empty()) return;
  const torch::Tensor posterior = diffusion::OfficialQPosterior(
      *official_schedule_, posterior_groups.size() == groups.size() ? x0 : torch::cat(posterior_x0, 0),
      torch::cat(x_t, 0), torch::tensor(posterior_timesteps, torch::kInt64).to(device));
  const torch::Tensor sampled = diffusion::GumbelArgmax(posterior, torch::cat(uniforms, 0));  // [B, N]
  offset = 0;
  for (SampleGroup* g : posterior_groups) {
    const int64_t n = g->tokens.size(0);
    g->tokens = sampled.narrow(0, offset, n);
    offset += n;
  }
}

}  // namespace vqd::pipeline
