// Which timesteps a request visits, and from which timestep's posterior each visit samples the next
// state: diffusers' contiguous plan (the last N timesteps), or the official code's strided fast
// sampling (microsoft/VQ-Diffusion DiffusionTransformer.sample_fast; spec section 9.3).
#pragma once

#include <cstdint>
#include <vector>

namespace vqd::diffusion {

struct PlannedStep {
  int64_t timestep = 0;            // the transformer's t (and the one progress events report)
  int64_t posterior_timestep = 0;  // q(. | x_t, x_0) is taken at this index; 0: sample p(x_0)
  int64_t unmask_count = 0;        // fixed-count sampling only (diffusion/prior_sampling.h)
};

// diffusers: timesteps steps-1 ... 0, each sampling x_{t-1} from its own posterior.
std::vector<PlannedStep> ContiguousPlan(int64_t steps);

// Time stride S >= 1 over a T-step schedule: visits T-1, T-1-S, ... (down to >= 0) and then 0 if
// that is not last. A visit at t > S-1 samples from the posterior at t-(S-1), which yields the
// state of the next visited timestep; the others (t <= S-1) use their own t, as the official code
// does. S = 1 is ContiguousPlan(T).
std::vector<PlannedStep> StridedPlan(int64_t num_train_timesteps, int64_t stride);

// Steps StridedPlan(T, S) visits.
int64_t StridedStepCount(int64_t num_train_timesteps, int64_t stride);

}  // namespace vqd::diffusion
