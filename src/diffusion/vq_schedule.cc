#include "diffusion/vq_schedule.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace vqd::diffusion {

absl::StatusOr<VqScheduleConfig> VqScheduleConfig::FromJson(const io::JsonConfig& json) {
  VqScheduleConfig c;
  VQD_ASSIGN_OR_RETURN(c.num_vec_classes, json.Int("num_vec_classes"));
  VQD_ASSIGN_OR_RETURN(c.num_train_timesteps, json.IntOr("num_train_timesteps", 100));
  VQD_ASSIGN_OR_RETURN(c.alpha_cum_start, json.FloatOr("alpha_cum_start", 0.99999));
  VQD_ASSIGN_OR_RETURN(c.alpha_cum_end, json.FloatOr("alpha_cum_end", 0.000009));
  VQD_ASSIGN_OR_RETURN(c.gamma_cum_start, json.FloatOr("gamma_cum_start", 0.000009));
  VQD_ASSIGN_OR_RETURN(c.gamma_cum_end, json.FloatOr("gamma_cum_end", 0.99999));
  if (c.num_vec_classes < 2) {
    return absl::InvalidArgumentError(absl::StrCat(json.path(), ": \"num_vec_classes\" must be at least 2"));
  }
  if (c.num_train_timesteps < 2 || c.num_train_timesteps > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat(json.path(), ": \"num_train_timesteps\" must be in [2, 100000], got ", c.num_train_timesteps));
  }
  return c;
}

nlohmann::json VqScheduleConfig::ToJson() const {
  return {{"_class_name", "VQDiffusionScheduler"},
          {"num_vec_classes", num_vec_classes},
          {"num_train_timesteps", num_train_timesteps},
          {"alpha_cum_start", alpha_cum_start},
          {"alpha_cum_end", alpha_cum_end},
          {"gamma_cum_start", gamma_cum_start},
          {"gamma_cum_end", gamma_cum_end}};
}

VqSchedule VqSchedule::Build(const VqScheduleConfig& config) {
  const int64_t T = config.num_train_timesteps;
  const double K = static_cast<double>(config.num_vec_classes - 1);
  // Same operation order as numpy in diffusers' alpha_schedule so the float64 values agree.
  std::vector<double> att(T), ctt(T);
  for (int64_t i = 0; i < T; ++i) {
    const double r = static_cast<double>(i) / static_cast<double>(T - 1);
    att[i] = r * (config.alpha_cum_end - config.alpha_cum_start) + config.alpha_cum_start;
    ctt[i] = r * (config.gamma_cum_end - config.gamma_cum_start) + config.gamma_cum_start;
  }
  std::vector<double> at(T), ct(T), bt(T), att_full(T + 1), ctt_full(T + 1), btt(T + 1);
  for (int64_t i = 0; i < T; ++i) {
    at[i] = att[i] / (i == 0 ? 1.0 : att[i - 1]);
    ct[i] = 1 - (1 - ctt[i]) / (1 - (i == 0 ? 0.0 : ctt[i - 1]));
    bt[i] = (1 - at[i] - ct[i]) / K;
  }
  for (int64_t i = 0; i < T; ++i) {
    att_full[i] = att[i];
    ctt_full[i] = ctt[i];
  }
  att_full[T] = 1;
  ctt_full[T] = 0;
  for (int64_t i = 0; i <= T; ++i) btt[i] = (1 - att_full[i] - ctt_full[i]) / K;

  auto log_f32 = [](const std::vector<double>& v) {
    torch::Tensor t = torch::tensor(v, torch::kFloat64);
    return torch::log(t).to(torch::kFloat32);
  };
  VqSchedule s;
  s.num_classes = config.num_vec_classes - 1;
  s.mask_class = config.num_vec_classes - 1;
  s.num_train_timesteps = T;
  s.log_at = log_f32(at);
  s.log_bt = log_f32(bt);
  s.log_ct = log_f32(ct);
  s.log_cumprod_at = log_f32(att_full);
  s.log_cumprod_bt = log_f32(btt);
  s.log_cumprod_ct = log_f32(ctt_full);
  return s;
}

VqSchedule VqSchedule::To(const torch::Device& device) const {
  VqSchedule s = *this;
  for (torch::Tensor* t : {&s.log_at, &s.log_bt, &s.log_ct, &s.log_cumprod_at, &s.log_cumprod_bt, &s.log_cumprod_ct}) {
    *t = t->to(device);
  }
  return s;
}

}  // namespace vqd::diffusion
