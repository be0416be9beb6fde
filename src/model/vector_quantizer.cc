#include "model/vector_quantizer.h"

namespace vqd::model {

VectorQuantizerImpl::VectorQuantizerImpl(int64_t num_embeddings, int64_t dim, const nn::TensorPlacement& placement) {
  embedding = register_module("embedding", nn::Embedding(num_embeddings, dim, placement));
}

torch::Tensor VectorQuantizerImpl::Encode(const torch::Tensor& z) {
  const int64_t b = z.size(0), d = z.size(1);
  torch::Tensor flat = z.permute({0, 2, 3, 1}).contiguous().view({-1, d});  // [B*h*w, D]
  return torch::cdist(flat, embedding->weight).argmin(1).view({b, -1});
}

torch::Tensor VectorQuantizerImpl::Lookup(const torch::Tensor& indices, int64_t height, int64_t width) {
  torch::Tensor z = embedding(indices);  // [B, h*w, D]
  return z.view({indices.size(0), height, width, -1}).permute({0, 3, 1, 2}).contiguous();
}

}  // namespace vqd::model
