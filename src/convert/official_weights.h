// Renaming the official checkpoints' tensors to the layouts this project (and, for the text family,
// diffusers) loads. Every input key must be known: an unknown one is an error naming it, never
// silently dropped, so that a checkpoint of another architecture cannot convert "successfully".
#pragma once

#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "convert/official_configs.h"
#include "io/tensor_map.h"

namespace vqd::convert {

// The parts of a DiffusionTransformer state dict (ckpt["ema"], or ckpt["model"] with its
// "transformer." prefix removed).
struct DiffusionTransformerParts {
  io::TensorMap transformer;     // "transformer.*" (prefix kept)
  io::TensorMap condition_emb;   // "condition_emb.*" (prefix removed): the CLIP text tower
  io::TensorMap schedule;        // log_at ... log_1_min_cumprod_ct
  torch::Tensor empty_text_embed;  // learnable text checkpoints only
};
absl::StatusOr<DiffusionTransformerParts> SplitDiffusionTransformer(const io::TensorMap& state_dict,
                                                                    const std::string& source);

// Text2ImageTransformer -> diffusers Transformer2DModel names (diffusers' own conversion script's
// mapping; the unused cross-attention mask buffers are dropped).
absl::StatusOr<io::TensorMap> TextTransformerWeights(const io::TensorMap& transformer);
// Condition2ImageTransformer -> ClassTransformer names.
absl::StatusOr<io::TensorMap> ClassTransformerWeights(const io::TensorMap& transformer);
// OpenAI CLIP's text tower -> transformers' CLIPTextModel names, the fused in_proj split into
// q/k/v; text_projection is dropped (the official model never uses it).
absl::StatusOr<io::TensorMap> ClipTextWeights(const io::TensorMap& condition_emb);

// quantize_to_full from a full_to_quantize table (help_folder/statistics/taming_vqvae_*.pt): for
// each shrunk code, the first full code that maps to it, as the official constructor derives it.
absl::StatusOr<torch::Tensor> QuantizeToFull(const torch::Tensor& full_to_quantize, int64_t shrunk_codes,
                                             const std::string& source);

// A Taming VQGAN (ckpt["model"]'s content_codec.enc.* and content_codec.dec.*) -> diffusers VQModel
// names, with the served codebook baked from the shrink table: embedding[q] = full[q2f[q]].
absl::StatusOr<io::TensorMap> VqganWeights(const io::TensorMap& model_state_dict, const TamingVqganConfig& config,
                                           const torch::Tensor& quantize_to_full);

}  // namespace vqd::convert
