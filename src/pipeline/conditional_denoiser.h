// The part of a pipeline that differs between model families: what a request is conditioned on,
// how it is prepared, and the transformer that predicts log p(x_0 | x_t) from it. Text models
// (ITHQ and the official COCO/CUB/CC/LAION-human checkpoints) and class-conditional models (the
// official ImageNet checkpoints) each implement it; the pipeline's steps, sampling and decoding are
// shared.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "pipeline/prompt_encoding.h"

namespace vqd::pipeline {

// The condition of a run of consecutive transformer rows: a request's encoding, or nullptr for
// the unconditional rows of guidance.
struct ConditionRun {
  const PromptEncoding* condition = nullptr;
  int64_t rows = 0;
};

class ConditionalDenoiser {
 public:
  virtual ~ConditionalDenoiser() = default;

  // tokens [R, N] int64, timesteps [R] int64 (one per row), rows conditioned as `runs` (their
  // rows add up to R) -> log p(x_0 | x_t) as float32 [R, K, N].
  virtual torch::Tensor LogProbs(const torch::Tensor& tokens, const torch::Tensor& timesteps,
                                 const std::vector<ConditionRun>& runs) = 0;

  virtual int64_t num_vector_embeds() const = 0;  // K + 1
  virtual int64_t grid_height() const = 0;
  virtual int64_t grid_width() const = 0;
  virtual int64_t num_embeds_ada_norm() const = 0;  // timesteps the transformer has embeddings for
  virtual int64_t transformer_parameters() const = 0;
};

}  // namespace vqd::pipeline
