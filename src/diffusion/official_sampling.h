// Ref: microsoft/VQ-Diffusion DiffusionTransformer (predict_start, q_posterior, p_sample) and
// DALLE / C_DALLE cf_predict_start and predict_start_with_truncation: the sampling arithmetic of
// the official code, which the models converted from the official checkpoints are served with.
// How it differs from diffusers (spec section 9.6): log p(x_0) is clamped to [-70, 0] and carries a
// mask row of -70; guidance runs when |s - 1| >= 1e-3 and is clamped; truncation drops to -70 over
// K + 1 rows; the posterior is computed with the checkpoint's own eight log schedules and clamped;
// and every step, t = 0 included, samples K + 1 classes from the posterior.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "io/tensor_map.h"

namespace vqd::diffusion {

// The official code's floor for log-probabilities.
constexpr double kOfficialLogFloor = -70.0;

// Whether the official code applies guidance at this scale.
inline bool OfficialGuides(float guidance_scale) { return std::abs(guidance_scale - 1.0f) >= 1e-3f; }

// The eight float32 log schedules DiffusionTransformer registers as buffers, as a checkpoint
// stores them (official inference uses the EMA copies, which may differ from freshly computed
// values by a few ulps).
struct OfficialSchedule {
  int64_t num_classes = 0;     // K; the mask class is K
  int64_t num_timesteps = 0;   // T
  torch::Tensor log_at, log_bt, log_ct, log_1_min_ct;                                     // [T]
  torch::Tensor log_cumprod_at, log_cumprod_bt, log_cumprod_ct, log_1_min_cumprod_ct;    // [T + 1]

  // The buffer names, as in the checkpoint and in a converted model's schedule file.
  static const std::vector<std::string>& BufferNames();
  // Takes the buffers by name (float32, lengths T and T + 1); `source` names them in messages.
  static absl::StatusOr<OfficialSchedule> FromTensors(const io::TensorMap& tensors, int64_t num_classes,
                                                      const std::string& source);
  io::TensorMap ToTensors() const;
  OfficialSchedule To(const torch::Device& device) const;
};

// predict_start's output without the mask row: the transformer's float32 log-softmax
// [B, K, N] clamped to [-70, 0].
torch::Tensor OfficialClamp(const torch::Tensor& log_p);

// cf_predict_start's guidance: g = u + s (c - u), renormalised with logsumexp over the classes,
// clamped to [-70, 0]. uncond, cond: clamped log-probs [B, K, N]; scale: float32 [B].
torch::Tensor OfficialGuidance(const torch::Tensor& uncond, const torch::Tensor& cond, const torch::Tensor& scale);

// Appends the mask class's row of -70: [B, K, N] -> [B, K + 1, N].
torch::Tensor AppendMaskRow(const torch::Tensor& log_p);

// The truncation wrapper: per position, keeps the most probable of the K + 1 rows whose cumulative
// probability first reaches the rate (always the top one) and sets the rest to -70.
// log_p: [B, K + 1, N] in [-70, 0]; rate: float32 [B].
torch::Tensor OfficialTruncate(const torch::Tensor& log_p, const torch::Tensor& rate);

// q_posterior: log p(x_{t-1} | x_t) from log p(x_0 | x_t), clamped to [-70, 0].
//   log_x0: float32 [B, K + 1, N]; x_t: int64 [B, N] (K = mask); t: int64 [B] in [0, T).
//   At t = 0 the cumulative tables' entry T (the identity) is used, as the official code does.
// `schedule` must be on the tensors' device.
torch::Tensor OfficialQPosterior(const OfficialSchedule& schedule, const torch::Tensor& log_x0, const torch::Tensor& x_t,
                                 const torch::Tensor& t);

}  // namespace vqd::diffusion
