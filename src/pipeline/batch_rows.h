// The transformer input of one denoising step over several sample groups (internal to the
// pipeline). Rows are laid out as [unconditional rows of the guided groups, in group order]
// [conditional rows of every group, in group order], so that guidance reads two contiguous blocks.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "pipeline/conditional_denoiser.h"
#include "pipeline/transformer_runner.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace vqd::pipeline {

struct BatchRows {
  std::vector<RowPiece> pieces;        // one per block of rows, in row order (null prompt: unconditional)
  int64_t uncond_rows = 0;             // U
  std::vector<int64_t> guided_images;  // indices (among all images) of the guided ones, [U]
};

BatchRows BuildRows(const std::vector<SampleGroup*>& groups);

// The same rows as a ConditionalDenoiser takes them: their tokens [R, N] and conditions; each
// row's timestep is in `timesteps`, parallel to the rows.
struct DenoiserRows {
  torch::Tensor tokens;
  std::vector<int64_t> timesteps;
  std::vector<ConditionRun> runs;
};
DenoiserRows ForDenoiser(const BatchRows& rows);

}  // namespace vqd::pipeline
