// Editing and inpainting (spec section 9.5): a request may start from an image instead of the
// fully masked grid. The image is encoded to tokens by the VQ-VAE encoder and quantizer, noised
// to the edit's first timestep with q(x_t | x_0) (SDEdit-style, the official filter_ratio), then
// denoised as usual. With a mask (white: regenerate), the tokens whose patch is entirely outside
// it are held to the encoded image at every step and at the end.
#pragma once

#include "absl/strings/string_view.h"

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace vqd::pipeline {

struct EditInput {
  torch::Tensor image;       // [H, W, 3] float32 in [0, 1], CPU: the image to start from
  torch::Tensor regenerate;  // [N] bool, CPU: tokens generated anew (inpainting); undefined: all
  float strength = 1.0f;     // (0, 1]: the edit starts at timestep int(T * strength) - 1
};

// The image from PNG bytes: it must decode and have the model's image size (RGBA loses its
// alpha). Errors are InvalidArgument starting with `field`.
absl::StatusOr<torch::Tensor> EditImageFromPng(absl::string_view png, const PipelineInfo& info, absl::string_view field);

// The inpainting mask from PNG bytes: the model's image size, every pixel black (keep) or white
// (regenerate) in every channel. A token is regenerated when any pixel of its patch is white.
// Returns [N] bool; errors are InvalidArgument starting with `field`.
absl::StatusOr<torch::Tensor> RegenerateMaskFromPng(absl::string_view png, const PipelineInfo& info,
                                                    absl::string_view field);

// Timesteps an edit of `strength` runs through: int(T * strength), which must be at least 1.
absl::StatusOr<int64_t> EditChainLength(float strength, const PipelineInfo& info);

struct EditStart {
  torch::Tensor tokens;        // [n, N] on the device: x_t at the first timestep
  torch::Tensor known_tokens;  // [n, N]: the encoded image (inpainting; undefined otherwise)
  torch::Tensor known;         // [n, N] bool: the positions held to it
};

// Encodes the image, noises it to timestep `t` with `generator` (one draw of [n, K + 1, N]) and,
// for inpainting, puts the kept positions back. `n` images share the image.
absl::StatusOr<EditStart> PrepareEdit(VqDiffusionPipeline& pipeline, const EditInput& edit, int64_t n, int64_t t,
                                      torch::Generator& generator);

}  // namespace vqd::pipeline
