#include "diffusion/truncation.h"

#include <limits>

namespace vqd::diffusion {

torch::Tensor Truncate(const torch::Tensor& log_p, const torch::Tensor& rate) {
  // On the CPU a sort along a contiguous dimension is 2.6x faster than along the strided class
  // dimension (one thread, [1, 4096, 1024]), so sort a [B, N, K] copy there. Each slice holds the
  // same values in the same order either way, and so gives the same sort and cumulative sums.
  const bool classes_last = log_p.device().is_cpu();
  const int64_t dim = classes_last ? 2 : 1;
  const torch::Tensor x = classes_last ? log_p.transpose(1, 2).contiguous() : log_p;
  const int64_t k = x.size(dim);
  auto [sorted, indices] = torch::sort(x, dim, /*descending=*/true);
  torch::Tensor below = sorted.exp().cumsum(dim) < rate.view({-1, 1, 1});
  // keep[j] = (j == 0) || cumsum[j - 1] < rate: shift by one along the classes, the top entry always kept.
  torch::Tensor keep_sorted = torch::cat({torch::ones_like(below.narrow(dim, 0, 1)), below.narrow(dim, 0, k - 1)}, dim);
  // Back to class order; the reference gathers with argsort(indices), the inverse permutation.
  torch::Tensor keep = torch::zeros_like(keep_sorted).scatter_(dim, indices, keep_sorted);
  if (classes_last) keep = keep.transpose(1, 2);
  return log_p.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
}

}  // namespace vqd::diffusion
