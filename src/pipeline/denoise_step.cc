// VqDiffusionPipeline::DenoiseStep: one transformer pass for a batch of sample groups.
#include <numeric>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "diffusion/gumbel_sampler.h"
#include "diffusion/guidance.h"
#include "diffusion/q_posterior.h"
#include "diffusion/truncation.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace vqd::pipeline {
namespace {

// The transformer input of a batch. Rows are laid out as [unconditional rows of the guided
// groups, in group order][conditional rows of every group, in group order], so that guidance
// reads two contiguous blocks.
struct BatchRows {
  torch::Tensor tokens;     // [R, N]
  torch::Tensor timesteps;  // [R]
  model::TextContext context;
  int64_t uncond_rows = 0;  // U
  std::vector<int64_t> guided_images;  // indices (among all images) of the guided ones, [U]
};

BatchRows BuildRows(const std::vector<SampleGroup*>& groups, const model::TextContext& null_context,
                    const torch::Device& device) {
  BatchRows rows;
  std::vector<torch::Tensor> uncond_tokens, cond_tokens;
  std::vector<int64_t> uncond_t, cond_t;
  const size_t num_blocks = null_context.size();
  std::vector<std::vector<torch::Tensor>> uncond_k(num_blocks), uncond_v(num_blocks), cond_k(num_blocks),
      cond_v(num_blocks);
  int64_t image = 0;
  for (const SampleGroup* g : groups) {
    const int64_t n = g->tokens.size(0);
    for (size_t b = 0; b < num_blocks; ++b) {
      const auto& kv = g->prompt->context[b];
      cond_k[b].push_back(kv.key.expand({n, -1, -1}));
      cond_v[b].push_back(kv.value.expand({n, -1, -1}));
      if (g->guided()) {
        uncond_k[b].push_back(null_context[b].key.expand({n, -1, -1}));
        uncond_v[b].push_back(null_context[b].value.expand({n, -1, -1}));
      }
    }
    cond_tokens.push_back(g->tokens);
    cond_t.insert(cond_t.end(), n, g->timestep);
    if (g->guided()) {
      uncond_tokens.push_back(g->tokens);
      uncond_t.insert(uncond_t.end(), n, g->timestep);
      for (int64_t i = 0; i < n; ++i) rows.guided_images.push_back(image + i);
    }
    image += n;
  }
  rows.uncond_rows = static_cast<int64_t>(uncond_t.size());
  std::vector<torch::Tensor> all_tokens = uncond_tokens;
  all_tokens.insert(all_tokens.end(), cond_tokens.begin(), cond_tokens.end());
  rows.tokens = torch::cat(all_tokens, 0);
  std::vector<int64_t> all_t = uncond_t;
  all_t.insert(all_t.end(), cond_t.begin(), cond_t.end());
  rows.timesteps = torch::tensor(all_t, torch::kInt64).to(device);
  rows.context.resize(num_blocks);
  for (size_t b = 0; b < num_blocks; ++b) {
    std::vector<torch::Tensor> keys = uncond_k[b], values = uncond_v[b];
    keys.insert(keys.end(), cond_k[b].begin(), cond_k[b].end());
    values.insert(values.end(), cond_v[b].begin(), cond_v[b].end());
    rows.context[b] = {torch::cat(keys, 0), torch::cat(values, 0)};
  }
  return rows;
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
  if (!(g.truncation_rate > 0.0f && g.truncation_rate <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("truncation rate ", g.truncation_rate, " outside (0, 1]"));
  }
  if (!std::isfinite(g.guidance_scale)) return absl::InvalidArgumentError("guidance scale is not finite");
  return absl::OkStatus();
}

}  // namespace

absl::Status VqDiffusionPipeline::DenoiseStep(std::vector<SampleGroup*>& groups) {
  if (groups.empty()) return absl::OkStatus();
  for (const SampleGroup* g : groups) VQD_RETURN_IF_ERROR(CheckGroup(*g, info_));
  return CatchTorch("denoising step", [&] {
    torch::InferenceMode inference;
    const torch::Device device = info_.device;
    BatchRows rows = BuildRows(groups, null_context_, device);
    torch::Tensor log_p = transformer_(rows.tokens, rows.timesteps, rows.context);  // [R, K, N] float32
    const int64_t num_images = log_p.size(0) - rows.uncond_rows;
    torch::Tensor x0 = log_p.narrow(0, rows.uncond_rows, num_images);  // conditional rows = one per image
    if (rows.uncond_rows > 0) {
      std::vector<float> scales;
      for (const SampleGroup* g : groups) {
        if (g->guided()) scales.insert(scales.end(), g->tokens.size(0), g->guidance_scale);
      }
      torch::Tensor idx = torch::tensor(rows.guided_images, torch::kInt64).to(device);
      torch::Tensor guided = diffusion::ApplyGuidance(log_p.narrow(0, 0, rows.uncond_rows), x0.index_select(0, idx),
                                                      torch::tensor(scales).to(device));
      x0 = x0.index_copy(0, idx, guided);
    }
    std::vector<float> rates;
    for (const SampleGroup* g : groups) rates.insert(rates.end(), g->tokens.size(0), g->truncation_rate);
    x0 = diffusion::Truncate(x0, torch::tensor(rates).to(device)).clamp_min(diffusion::kLogProbFloor);

    // Sample each group from its own generator, in the shape diffusers draws for that request.
    int64_t offset = 0;
    std::vector<torch::Tensor> posterior_logp, posterior_xt, posterior_t;  // the t > 0 groups, batched
    std::vector<torch::Tensor> uniforms;                                   // parallel to posterior_*
    std::vector<SampleGroup*> posterior_groups;
    for (SampleGroup* g : groups) {
      const int64_t n = g->tokens.size(0);
      torch::Tensor group_x0 = x0.narrow(0, offset, n);
      offset += n;
      if (g->log_p_x_0_out) *g->log_p_x_0_out = group_x0.clone();
      if (g->timestep == 0) {
        torch::Tensor u = diffusion::DrawUniform(*g->generator, group_x0.sizes(), device);
        g->tokens = diffusion::GumbelArgmax(group_x0, u);
        continue;
      }
      posterior_logp.push_back(group_x0);
      posterior_xt.push_back(g->tokens);
      posterior_t.push_back(torch::full({n}, g->timestep, torch::TensorOptions().dtype(torch::kInt64)));
      uniforms.push_back(diffusion::DrawUniform(
          *g->generator, {n, info_.codebook_size + 1, info_.num_latent_pixels}, device));
      posterior_groups.push_back(g);
    }
    if (posterior_groups.empty()) return;
    torch::Tensor logits = diffusion::QPosterior(schedule_, torch::cat(posterior_logp, 0), torch::cat(posterior_xt, 0),
                                                 torch::cat(posterior_t, 0).to(device));
    torch::Tensor sampled = diffusion::GumbelArgmax(logits, torch::cat(uniforms, 0));  // [B', N]
    offset = 0;
    for (SampleGroup* g : posterior_groups) {
      const int64_t n = g->tokens.size(0);
      g->tokens = sampled.narrow(0, offset, n);
      offset += n;
    }
  });
}

}  // namespace vqd::pipeline
