#include "diffusion/official_sampling.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/torch_util.h"
#include "diffusion/q_posterior.h"
#include "diffusion/truncation.h"

namespace vqd::diffusion {
namespace {

// Per-sample schedule values as [B, 1, 1].
torch::Tensor At(const torch::Tensor& table, const torch::Tensor& t) { return table.index_select(0, t).view({-1, 1, 1}); }

// The official log_add_exp, kept as written: its rounding differs from torch.logaddexp's.
torch::Tensor LogAddExp(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor maximum = torch::max(a, b);
  return maximum + torch::log(torch::exp(a - maximum) + torch::exp(b - maximum));
}

// q_pred(log_x, t) (cumulative) over K + 1 rows; the official code wraps t = -1 to T.
torch::Tensor QPred(const OfficialSchedule& s, const torch::Tensor& log_x, const torch::Tensor& t) {
  const torch::Tensor tt = (t + (s.num_timesteps + 1)) % (s.num_timesteps + 1);
  const int64_t k = s.num_classes;
  return torch::cat({LogAddExp(log_x.narrow(1, 0, k) + At(s.log_cumprod_at, tt), At(s.log_cumprod_bt, tt)),
                     LogAddExp(log_x.narrow(1, k, 1) + At(s.log_1_min_cumprod_ct, tt), At(s.log_cumprod_ct, tt))},
                    1);
}

}  // namespace

const std::vector<std::string>& OfficialSchedule::BufferNames() {
  static const std::vector<std::string> kNames = {"log_at",         "log_bt",         "log_ct",
                                                  "log_1_min_ct",   "log_cumprod_at", "log_cumprod_bt",
                                                  "log_cumprod_ct", "log_1_min_cumprod_ct"};
  return kNames;
}

absl::StatusOr<OfficialSchedule> OfficialSchedule::FromTensors(const io::TensorMap& tensors, int64_t num_classes,
                                                               const std::string& source) {
  OfficialSchedule s;
  s.num_classes = num_classes;
  auto take = [&](const std::string& name, int64_t extra, torch::Tensor* out) -> absl::Status {
    const auto it = tensors.find(name);
    if (it == tensors.end()) return absl::InvalidArgumentError(absl::StrCat(source, ": schedule buffer ", name, " is missing"));
    const torch::Tensor& t = it->second;
    if (t.dim() != 1 || t.scalar_type() != torch::kFloat32) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": schedule buffer ", name, " must be 1-D float32, got ",
                                                     DtypeName(t.scalar_type()), ShapeString(t.sizes())));
    }
    if (s.num_timesteps == 0) s.num_timesteps = t.size(0) - extra;
    if (t.size(0) != s.num_timesteps + extra || s.num_timesteps < 1) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": schedule buffer ", name, " has ", t.size(0),
                                                     " entries, expected ", s.num_timesteps + extra));
    }
    *out = t.contiguous();
    return absl::OkStatus();
  };
  for (auto [name, extra, out] : std::vector<std::tuple<std::string, int64_t, torch::Tensor*>>{
           {"log_at", 0, &s.log_at},
           {"log_bt", 0, &s.log_bt},
           {"log_ct", 0, &s.log_ct},
           {"log_1_min_ct", 0, &s.log_1_min_ct},
           {"log_cumprod_at", 1, &s.log_cumprod_at},
           {"log_cumprod_bt", 1, &s.log_cumprod_bt},
           {"log_cumprod_ct", 1, &s.log_cumprod_ct},
           {"log_1_min_cumprod_ct", 1, &s.log_1_min_cumprod_ct}}) {
    if (absl::Status st = take(name, extra, out); !st.ok()) return st;
  }
  // log_bt = log((1 - a - c) / K): its first entry says which K the schedule was made for
  // (Appendix A of the spec), which catches a schedule paired with the wrong codebook.
  const double k_from_schedule = std::exp(-static_cast<double>(s.log_cumprod_bt[0].item<float>())) * 1e-6;
  if (std::abs(k_from_schedule - static_cast<double>(num_classes)) > 0.01 * num_classes + 1) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": log_cumprod_bt[0] = ", s.log_cumprod_bt[0].item<float>(),
                                                   " belongs to a codebook of about ", std::llround(k_from_schedule),
                                                   " classes, the model has ", num_classes));
  }
  return s;
}

io::TensorMap OfficialSchedule::ToTensors() const {
  return {{"log_at", log_at},
          {"log_bt", log_bt},
          {"log_ct", log_ct},
          {"log_1_min_ct", log_1_min_ct},
          {"log_cumprod_at", log_cumprod_at},
          {"log_cumprod_bt", log_cumprod_bt},
          {"log_cumprod_ct", log_cumprod_ct},
          {"log_1_min_cumprod_ct", log_1_min_cumprod_ct}};
}

OfficialSchedule OfficialSchedule::To(const torch::Device& device) const {
  OfficialSchedule s = *this;
  for (torch::Tensor* t : {&s.log_at, &s.log_bt, &s.log_ct, &s.log_1_min_ct, &s.log_cumprod_at, &s.log_cumprod_bt,
                           &s.log_cumprod_ct, &s.log_1_min_cumprod_ct}) {
    *t = t->to(device);
  }
  return s;
}

torch::Tensor OfficialClamp(const torch::Tensor& log_p) { return log_p.clamp(kOfficialLogFloor, 0); }

torch::Tensor OfficialGuidance(const torch::Tensor& uncond, const torch::Tensor& cond, const torch::Tensor& scale) {
  torch::Tensor guided = uncond + scale.view({-1, 1, 1}) * (cond - uncond);
  guided = guided - torch::logsumexp(guided, 1, /*keepdim=*/true);
  return guided.clamp(kOfficialLogFloor, 0);
}

torch::Tensor AppendMaskRow(const torch::Tensor& log_p) {
  return torch::cat({log_p, torch::full({log_p.size(0), 1, log_p.size(2)}, kOfficialLogFloor, log_p.options())}, 1);
}

torch::Tensor OfficialTruncate(const torch::Tensor& log_p, const torch::Tensor& rate) {
  // Kept entries keep their value, dropped ones become -inf and then the floor: exactly the
  // official keep * out + (1 - keep) * -70, since every input lies in [-70, 0].
  return Truncate(log_p, rate).clamp_min(kOfficialLogFloor);
}

torch::Tensor OfficialQPosterior(const OfficialSchedule& s, const torch::Tensor& log_x0, const torch::Tensor& x_t,
                                 const torch::Tensor& t) {
  const int64_t k = s.num_classes;
  const int64_t b = x_t.size(0), n = x_t.size(1);
  const torch::Tensor log_onehot = IndexToLogOnehot(x_t, k + 1);  // log(clamp(one_hot, 1e-30))
  const torch::Tensor masked = (x_t == k).unsqueeze(1);          // [B, 1, N]
  const torch::Tensor log_zero =
      torch::log(torch::full({b, 1, n}, 1e-30, log_x0.options()));  // the official log_zero_vector
  const torch::Tensor known = log_onehot.narrow(1, 0, k);

  // log q(x_t | x_0) over the K known classes; a masked x_t gives log_cumprod_ct[t] everywhere.
  torch::Tensor log_qt = LogAddExp(known + At(s.log_cumprod_at, t), At(s.log_cumprod_bt, t));
  log_qt = torch::where(masked, At(s.log_cumprod_ct, t).expand_as(log_qt), log_qt);
  // log q(x_t | x_{t-1}) over K + 1 classes: the mask row is log 0 for a known x_t; a masked x_t
  // gives log_ct[t] for the known classes and log 1 for the mask.
  torch::Tensor one_step = torch::cat({LogAddExp(known + At(s.log_at, t), At(s.log_bt, t)), log_zero}, 1);
  const torch::Tensor ct_vector =
      torch::cat({At(s.log_ct, t).expand({b, k, 1}), torch::zeros({b, 1, 1}, log_x0.options())}, 1);  // [B, K+1, 1]
  one_step = torch::where(masked, ct_vector.expand_as(one_step), one_step);

  torch::Tensor q = torch::cat({log_x0.narrow(1, 0, k) - log_qt, log_zero}, 1);
  const torch::Tensor lse = torch::logsumexp(q, 1, /*keepdim=*/true);
  q = q - lse;
  return (QPred(s, q, t - 1) + one_step + lse).clamp(kOfficialLogFloor, 0);
}

}  // namespace vqd::diffusion
