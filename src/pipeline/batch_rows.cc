#include "pipeline/batch_rows.h"

namespace vqd::pipeline {

BatchRows BuildRows(const std::vector<SampleGroup*>& groups) {
  BatchRows rows;
  std::vector<RowPiece> cond;
  int64_t image = 0;
  for (const SampleGroup* g : groups) {
    const int64_t n = g->tokens.size(0);
    cond.push_back({g->tokens, g->timestep, g->prompt});
    if (g->guided()) {
      rows.pieces.push_back({g->tokens, g->timestep, nullptr});
      rows.uncond_rows += n;
      for (int64_t i = 0; i < n; ++i) rows.guided_images.push_back(image + i);
    }
    image += n;
  }
  rows.pieces.insert(rows.pieces.end(), cond.begin(), cond.end());
  return rows;
}

DenoiserRows ForDenoiser(const BatchRows& rows) {
  DenoiserRows out;
  std::vector<torch::Tensor> tokens;
  for (const RowPiece& piece : rows.pieces) {
    const int64_t n = piece.tokens.size(0);
    tokens.push_back(piece.tokens);
    out.timesteps.insert(out.timesteps.end(), static_cast<size_t>(n), piece.timestep);
    out.runs.push_back({piece.prompt.get(), n});
  }
  out.tokens = torch::cat(tokens, 0);
  return out;
}

}  // namespace vqd::pipeline
