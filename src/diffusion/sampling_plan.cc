#include "diffusion/sampling_plan.h"

namespace vqd::diffusion {

std::vector<PlannedStep> ContiguousPlan(int64_t steps) {
  std::vector<PlannedStep> plan;
  plan.reserve(static_cast<size_t>(steps));
  for (int64_t t = steps - 1; t >= 0; --t) plan.push_back({t, t});
  return plan;
}

std::vector<PlannedStep> StridedPlan(int64_t num_train_timesteps, int64_t stride) {
  const int64_t skip = stride - 1;
  std::vector<PlannedStep> plan;
  for (int64_t t = num_train_timesteps - 1; t >= 0; t -= stride) plan.push_back({t, t > skip ? t - skip : t});
  if (!plan.empty() && plan.back().timestep != 0) plan.push_back({0, 0});
  return plan;
}

int64_t StridedStepCount(int64_t num_train_timesteps, int64_t stride) {
  if (num_train_timesteps < 1 || stride < 1) return 0;
  const int64_t visits = (num_train_timesteps - 1) / stride + 1;
  return (num_train_timesteps - 1) % stride == 0 ? visits : visits + 1;
}

}  // namespace vqd::diffusion
