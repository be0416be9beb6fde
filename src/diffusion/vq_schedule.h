// Ref: diffusers/schedulers/scheduling_vq_diffusion.py (VQDiffusionScheduler.__init__), itself from
// microsoft/VQ-Diffusion's alpha_schedule. The six log schedules of the mask-and-replace process.
#pragma once

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "io/json_config.h"

namespace vqd::diffusion {

struct VqScheduleConfig {
  int64_t num_vec_classes = 4097;  // codebook size + 1 (mask)
  int64_t num_train_timesteps = 100;
  double alpha_cum_start = 0.99999;
  double alpha_cum_end = 0.000009;
  double gamma_cum_start = 0.000009;
  double gamma_cum_end = 0.99999;

  static absl::StatusOr<VqScheduleConfig> FromJson(const io::JsonConfig& json);
  nlohmann::json ToJson() const;
};

// float32 log schedules, computed in float64 as diffusers does and then rounded. Index t describes
// q(x_t | x_{t-1}) (log_at/bt/ct, length T) and q(x_t | x_0) (log_cumprod_*, length T + 1, the
// last entry being the identity: a = 1, b = c = 0).
struct VqSchedule {
  int64_t num_classes = 0;  // K: non-mask classes
  int64_t mask_class = 0;   // K
  int64_t num_train_timesteps = 0;
  torch::Tensor log_at, log_bt, log_ct;                          // [T]
  torch::Tensor log_cumprod_at, log_cumprod_bt, log_cumprod_ct;  // [T + 1]

  static VqSchedule Build(const VqScheduleConfig& config);
  VqSchedule To(const torch::Device& device) const;
};

}  // namespace vqd::diffusion
