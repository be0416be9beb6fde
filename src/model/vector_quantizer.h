// Ref: diffusers/models/autoencoders/vae.py VectorQuantizer (remap=None, legacy, inference only).
#pragma once

#include <torch/torch.h>

#include "nn/layers.h"

namespace vqd::model {

class VectorQuantizerImpl : public torch::nn::Module {
 public:
  VectorQuantizerImpl(int64_t num_embeddings, int64_t dim, const nn::TensorPlacement& placement);

  // Nearest codebook entry (Euclidean, first on ties) of each position: z [B, D, h, w] -> [B, h*w]
  // int64 indices in raster order.
  torch::Tensor Encode(const torch::Tensor& z);
  // Codebook vectors of indices [B, h*w] as [B, D, h, w] (get_codebook_entry).
  torch::Tensor Lookup(const torch::Tensor& indices, int64_t height, int64_t width);

  nn::Embedding embedding{nullptr};
};
TORCH_MODULE(VectorQuantizer);

}  // namespace vqd::model
