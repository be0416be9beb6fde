// Live previews: what the model currently predicts the finished images to be. The prediction of
// x_0 at a step (the argmax of log p(x_0 | x_t) over the codes) fills the still-masked positions;
// positions already unmasked keep their tokens. Decoded by the VQ-VAE and shrunk to at most
// kPreviewSide pixels a side, as small PNGs.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace vqd::pipeline {

inline constexpr int64_t kPreviewSide = 64;

// Whether step `step` (1-based) of `total` owes a preview with interval `interval` (0: never). The
// last step never does: its images follow at once.
inline bool PreviewDue(int64_t interval, int64_t step, int64_t total) {
  return interval > 0 && step < total && step % interval == 0;
}

// tokens [n, N] after the step, x0_argmax [n, N] (SampleGroup::x0_argmax_out) -> preview grids.
torch::Tensor PreviewTokens(const torch::Tensor& tokens, const torch::Tensor& x0_argmax, int64_t mask_class);

// One PNG per grid: decoded, averaged down by the largest integer factor that brings each side to
// at most kPreviewSide (1 for small models), 8-bit RGB.
struct PreviewImages {
  std::vector<std::string> pngs;
  int64_t width = 0, height = 0;
};
absl::StatusOr<PreviewImages> RenderPreviews(VqDiffusionPipeline& pipeline, const torch::Tensor& grids);

}  // namespace vqd::pipeline
