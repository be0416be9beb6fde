#include "diffusion/q_posterior.h"

namespace vqd::diffusion {
namespace {

// Per-sample schedule values as [B, 1, 1] for broadcasting over classes and positions.
torch::Tensor At(const torch::Tensor& table, const torch::Tensor& t) { return table.index_select(0, t).view({-1, 1, 1}); }

// log q(x_t | x_0 = k) (cumulative) or log q(x_t | x_{t-1} = k) for each known class k, and for
// the step form the mask row appended from the one-hot.
torch::Tensor LogQTransitioningToKnownClass(const VqSchedule& s, const torch::Tensor& t, const torch::Tensor& x_t,
                                            const torch::Tensor& log_onehot_x_t, bool cumulative) {
  const torch::Tensor a = At(cumulative ? s.log_cumprod_at : s.log_at, t);
  const torch::Tensor b = At(cumulative ? s.log_cumprod_bt : s.log_bt, t);
  const torch::Tensor c = At(cumulative ? s.log_cumprod_ct : s.log_ct, t);
  torch::Tensor known = log_onehot_x_t.narrow(1, 0, s.num_classes);      // [B, K, N]
  torch::Tensor log_q = (known + a).logaddexp(b);                         // [B, K, N]
  torch::Tensor masked = (x_t == s.mask_class).unsqueeze(1);              // [B, 1, N]
  log_q = torch::where(masked, c.expand_as(log_q), log_q);
  if (!cumulative) log_q = torch::cat({log_q, log_onehot_x_t.narrow(1, s.num_classes, 1)}, 1);  // [B, K+1, N]
  return log_q;
}

}  // namespace

torch::Tensor IndexToLogOnehot(const torch::Tensor& x, int64_t num_classes) {
  torch::Tensor onehot = torch::one_hot(x, num_classes).permute({0, 2, 1}).to(torch::kFloat32);
  return torch::log(onehot.clamp_min(1e-30));
}

torch::Tensor LogQXtGivenX0(const VqSchedule& s, const torch::Tensor& x_0, int64_t t) {
  const torch::Tensor log_onehot = IndexToLogOnehot(x_0, s.num_classes + 1);  // [B, K+1, N]
  const torch::Tensor a = s.log_cumprod_at[t], b = s.log_cumprod_bt[t], c = s.log_cumprod_ct[t];
  const torch::Tensor codes = (log_onehot.narrow(1, 0, s.num_classes) + a).logaddexp(b);  // [B, K, N]
  const torch::Tensor mask = c.expand({x_0.size(0), 1, x_0.size(1)});
  return torch::cat({codes, mask}, 1);
}

torch::Tensor QPosterior(const VqSchedule& s, const torch::Tensor& log_p_x_0, const torch::Tensor& x_t,
                         const torch::Tensor& t) {
  torch::Tensor log_onehot = IndexToLogOnehot(x_t, s.num_classes + 1);                          // [B, K+1, N]
  torch::Tensor log_q_x_t_given_x_0 = LogQTransitioningToKnownClass(s, t, x_t, log_onehot, true);   // [B, K, N]
  torch::Tensor log_q_t_given_x_t_min_1 = LogQTransitioningToKnownClass(s, t, x_t, log_onehot, false);  // [B, K+1, N]
  torch::Tensor q = log_p_x_0 - log_q_x_t_given_x_0;
  torch::Tensor lse = torch::logsumexp(q, 1, /*keepdim=*/true);  // [B, 1, N]
  q = q - lse;
  // apply_cumulative_transitions(q, t - 1)
  const torch::Tensor prev = t - 1;
  q = (q + At(s.log_cumprod_at, prev)).logaddexp(At(s.log_cumprod_bt, prev));
  q = torch::cat({q, At(s.log_cumprod_ct, prev).expand({q.size(0), 1, q.size(2)})}, 1);  // [B, K+1, N]
  return q + log_q_t_given_x_t_min_1 + lse;
}

}  // namespace vqd::diffusion
