#include "diffusion/truncation.h"

#include <limits>

namespace vqd::diffusion {

torch::Tensor Truncate(const torch::Tensor& log_p, const torch::Tensor& rate) {
  auto [sorted, indices] = torch::sort(log_p, /*dim=*/1, /*descending=*/true);
  torch::Tensor below = sorted.exp().cumsum(1) < rate.view({-1, 1, 1});  // [B, K, N]
  // keep[j] = (j == 0) || cumsum[j - 1] < rate: shift right by one, the top entry always kept.
  torch::Tensor keep_sorted = torch::cat({torch::ones_like(below.narrow(1, 0, 1)), below.narrow(1, 0, below.size(1) - 1)}, 1);
  // Back to class order; the reference gathers with argsort(indices), the inverse permutation.
  torch::Tensor keep = torch::zeros_like(keep_sorted).scatter_(1, indices, keep_sorted);
  return log_p.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
}

}  // namespace vqd::diffusion
