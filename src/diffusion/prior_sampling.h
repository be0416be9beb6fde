// Improved VQ-Diffusion's fixed-count unmasking (microsoft/VQ-Diffusion DiffusionTransformer.p_sample
// with prior_rule > 0; spec section 9.4): instead of the posterior's random number of newly
// unmasked tokens, each step unmasks exactly the scheduled count, at positions drawn with weights
// that are uniform (rule 1) or the "purity" of each position's prediction (rule 2), which lets
// confident positions go first; purity also sharpens confident predictions by the prior weight.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "diffusion/sampling_plan.h"

namespace vqd::diffusion {

enum class PriorRule {
  kNone = 0,     // the plain posterior (VQ-Diffusion v1, diffusers)
  kUniform = 1,  // fixed counts, positions uniform among the masked ones
  kPurity = 2,   // fixed counts, positions weighted by purity, predictions sharpened by the weight
};
const char* PriorRuleName(PriorRule rule);

// Tokens to unmask at each timestep t of a T-step schedule over N tokens (index t; entry 0 is 0,
// t = 0 samples every position from p(x_0)); entries 1..T-1 add up to N. For T = 100 these are the
// official counts ([10] + [11, 10, 10] x 32 + [11, 11] at t = 1..99 for ITHQ's 1024 tokens) scaled to
// N by largest remainders; for other schedules N spread evenly over t = 1..T-1.
std::vector<int64_t> PriorUnmaskSchedule(int64_t num_train_timesteps, int64_t num_tokens);

// Sets each visit's unmask_count for a plan: the counts of the timesteps from just above the next
// visit up to this one (the first visit also takes every timestep above it, since the grid starts
// fully masked), so that the last visit with t > 0 leaves nothing masked whatever the plan.
void AssignUnmaskCounts(std::vector<PlannedStep>& plan, int64_t num_train_timesteps, int64_t num_tokens);

// One fixed-count step for one request's images. log_p_x_0: float32 [n, C, N] log p(x_0) after
// guidance and truncation (C >= K; rows from K on, the official mask row, are ignored); tokens:
// int64 [n, N] with `mask_class` = K for masked positions. Draws one uniform tensor [n, K, N] for
// the candidates and then the positions, both from `generator`. Returns the new tokens.
torch::Tensor PriorUnmaskStep(const torch::Tensor& log_p_x_0, const torch::Tensor& tokens, int64_t mask_class,
                              PriorRule rule, float prior_weight, int64_t unmask_count, torch::Generator& generator);

}  // namespace vqd::diffusion
