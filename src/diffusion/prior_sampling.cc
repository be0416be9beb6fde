#include "diffusion/prior_sampling.h"

#include <algorithm>
#include <numeric>

#include "diffusion/gumbel_sampler.h"

namespace vqd::diffusion {

const char* PriorRuleName(PriorRule rule) {
  switch (rule) {
    case PriorRule::kNone: return "none";
    case PriorRule::kUniform: return "uniform";
    case PriorRule::kPurity: return "purity";
  }
  return "unknown";
}

std::vector<int64_t> PriorUnmaskSchedule(int64_t num_train_timesteps, int64_t num_tokens) {
  const int64_t T = num_train_timesteps;
  std::vector<int64_t> counts(static_cast<size_t>(std::max<int64_t>(T, 1)), 0);
  if (T < 2 || num_tokens < 1) return counts;
  std::vector<int64_t> base(static_cast<size_t>(T), 1);
  base[0] = 0;
  if (T == 100) {  // the official list (Improved VQ-Diffusion, 1024 tokens, at most 1024 per call)
    base[1] = 10;
    for (int64_t t = 2; t <= 97; ++t) base[static_cast<size_t>(t)] = (t - 2) % 3 == 0 ? 11 : 10;
    base[98] = base[99] = 11;
  }
  const int64_t total = std::accumulate(base.begin(), base.end(), int64_t{0});
  // Largest remainders; ties go to the later (earlier-visited) timestep.
  std::vector<int64_t> remainder(static_cast<size_t>(T), 0);
  int64_t assigned = 0;
  for (int64_t t = 1; t < T; ++t) {
    const int64_t share = num_tokens * base[static_cast<size_t>(t)];
    counts[static_cast<size_t>(t)] = share / total;
    remainder[static_cast<size_t>(t)] = share % total;
    assigned += counts[static_cast<size_t>(t)];
  }
  std::vector<int64_t> order(static_cast<size_t>(T - 1));
  std::iota(order.begin(), order.end(), int64_t{1});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const int64_t ra = remainder[static_cast<size_t>(a)], rb = remainder[static_cast<size_t>(b)];
    return ra != rb ? ra > rb : a > b;
  });
  for (size_t i = 0; assigned < num_tokens; ++i, ++assigned) ++counts[static_cast<size_t>(order[i % order.size()])];
  return counts;
}

void AssignUnmaskCounts(std::vector<PlannedStep>& plan, int64_t num_train_timesteps, int64_t num_tokens) {
  const std::vector<int64_t> counts = PriorUnmaskSchedule(num_train_timesteps, num_tokens);
  for (size_t i = 0; i < plan.size(); ++i) {
    const int64_t t = plan[i].timestep;
    plan[i].unmask_count = 0;
    if (t <= 0) continue;
    const int64_t upper = i == 0 ? num_train_timesteps - 1 : t;
    const int64_t lower = i + 1 < plan.size() ? plan[i + 1].timestep + 1 : 1;
    for (int64_t k = std::max<int64_t>(lower, 1); k <= upper; ++k) plan[i].unmask_count += counts[static_cast<size_t>(k)];
  }
}

torch::Tensor PriorUnmaskStep(const torch::Tensor& log_p_x_0, const torch::Tensor& tokens, int64_t mask_class,
                              PriorRule rule, float prior_weight, int64_t unmask_count, torch::Generator& generator) {
  const torch::Tensor x0 = log_p_x_0.narrow(1, 0, mask_class);  // [n, K, N]
  const torch::Tensor masked = tokens.eq(mask_class).to(torch::kFloat32);  // [n, N]
  torch::Tensor score;
  if (rule == PriorRule::kPurity) {
    // Purity: the probability of each position's most likely code, relative to the image's best.
    score = x0.exp().amax(1).clamp(0, 1);
    score = score / (score.amax(1, /*keepdim=*/true) + 1e-10);
  } else {
    score = torch::ones_like(masked);
  }
  torch::Tensor prob = x0;
  if (rule == PriorRule::kPurity && prior_weight > 0) {
    prob = torch::log(torch::softmax((1 + prior_weight * score.unsqueeze(1)) * x0, 1)).clamp(-70, 0);
  }
  const torch::Tensor candidates = GumbelArgmax(prob, DrawUniform(generator, x0.sizes(), x0.device()));  // [n, N]
  const torch::Tensor weights = score * masked;
  // One host read for all images: how many each has masked and the weights' totals.
  const torch::Tensor totals = torch::stack({masked.sum(1), weights.sum(1)}, 1).to(torch::kCPU);
  torch::Tensor out = tokens.clone();
  for (int64_t i = 0; i < tokens.size(0); ++i) {
    const int64_t still_masked = static_cast<int64_t>(totals[i][0].item<float>());
    const int64_t k = std::min(unmask_count, still_masked);
    if (k <= 0) continue;
    // Nothing has weight (every masked prediction flat at zero purity): uniform over the masked.
    const torch::Tensor w = totals[i][1].item<float>() < 1e-6f ? masked[i] : weights[i];
    const torch::Tensor positions = torch::multinomial(w, k, /*replacement=*/false, generator);
    out[i].index_copy_(0, positions, candidates[i].index_select(0, positions));
  }
  return out;
}

}  // namespace vqd::diffusion
