#include "pipeline/edit_start.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "io/png.h"

namespace vqd::pipeline {
namespace {

absl::StatusOr<io::Image> DecodeSized(absl::string_view png, const PipelineInfo& info, absl::string_view field) {
  if (png.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": is empty"));
  absl::StatusOr<io::Image> image = io::DecodePng(std::string_view(png.data(), png.size()));
  if (!image.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": is not a PNG that decodes: ", image.status().message()));
  }
  if (image->width != info.image_width || image->height != info.image_height) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": is ", image->width, "x", image->height,
                                                   "; the model's images are ", info.image_width, "x",
                                                   info.image_height));
  }
  return image;
}

}  // namespace

absl::StatusOr<torch::Tensor> EditImageFromPng(absl::string_view png, const PipelineInfo& info, absl::string_view field) {
  VQD_ASSIGN_OR_RETURN(io::Image image, DecodeSized(png, info, field));
  torch::Tensor pixels = torch::from_blob(image.pixels.data(), {image.height, image.width, image.channels}, torch::kUInt8);
  return pixels.narrow(2, 0, 3).to(torch::kFloat32).div(255).contiguous();
}

absl::StatusOr<torch::Tensor> RegenerateMaskFromPng(absl::string_view png, const PipelineInfo& info,
                                                    absl::string_view field) {
  VQD_ASSIGN_OR_RETURN(io::Image image, DecodeSized(png, info, field));
  const int channels = std::min(image.channels, 3);  // alpha says nothing about the mask
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* p = &image.pixels[(static_cast<size_t>(y) * image.width + x) * image.channels];
      for (int c = 0; c < channels; ++c) {
        if ((p[c] != 0 && p[c] != 255) || p[c] != p[0]) {
          return absl::InvalidArgumentError(absl::StrCat(
              field, ": must be black (keep) and white (regenerate) only; pixel (", x, ", ", y, ") is (",
              static_cast<int>(p[0]), ", ", static_cast<int>(p[std::min(1, channels - 1)]), ", ",
              static_cast<int>(p[channels - 1]), ")"));
        }
      }
    }
  }
  const int64_t gh = info.grid_height, gw = info.grid_width;
  if (gh <= 0 || gw <= 0 || info.image_height % gh != 0 || info.image_width % gw != 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": the model's ", info.image_width, "x", info.image_height,
                                                   " images do not divide into its ", gw, "x", gh, " token grid"));
  }
  torch::Tensor white = torch::from_blob(image.pixels.data(), {image.height, image.width, image.channels}, torch::kUInt8)
                            .select(2, 0)
                            .eq(255);
  // [H, W] -> [gh, H/gh, gw, W/gw]: a token's patch regenerates if any of its pixels is white.
  return white.view({gh, info.image_height / gh, gw, info.image_width / gw}).any(3).any(1).reshape({gh * gw}).clone();
}

absl::StatusOr<int64_t> EditChainLength(float strength, const PipelineInfo& info) {
  const int64_t T = info.num_train_timesteps;
  if (!(strength > 0.0f && strength <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("strength must be in (0, 1], got ", strength));
  }
  const int64_t chain = static_cast<int64_t>(std::floor(static_cast<double>(T) * strength));
  if (chain < 1) {
    return absl::InvalidArgumentError(absl::StrCat("strength ", strength, " starts at no timestep of the ", T,
                                                   "-step schedule; the least is 1/", T));
  }
  return chain;
}

absl::StatusOr<EditStart> PrepareEdit(VqDiffusionPipeline& pipeline, const EditInput& edit, int64_t n, int64_t t,
                                      torch::Generator& generator) {
  const PipelineInfo& info = pipeline.info();
  if (edit.regenerate.defined() && edit.regenerate.numel() != info.num_latent_pixels) {
    return absl::InvalidArgumentError(absl::StrCat("the inpainting mask covers ", edit.regenerate.numel(),
                                                   " tokens; the model's grid has ", info.num_latent_pixels));
  }
  VQD_ASSIGN_OR_RETURN(torch::Tensor encoded, pipeline.EncodeImage(edit.image.unsqueeze(0)));  // [1, N]
  EditStart start;
  VQD_RETURN_IF_ERROR(CatchTorch("preparing the edit", [&] {
    start.known_tokens = encoded.to(info.device).expand({n, info.num_latent_pixels}).contiguous();
  }));
  VQD_ASSIGN_OR_RETURN(start.tokens, pipeline.NoiseTokens(start.known_tokens, t, generator));
  if (!edit.regenerate.defined()) {
    start.known_tokens = torch::Tensor();
    return start;
  }
  VQD_RETURN_IF_ERROR(CatchTorch("preparing the inpainting mask", [&] {
    start.known = edit.regenerate.logical_not().to(info.device).unsqueeze(0).expand({n, info.num_latent_pixels}).contiguous();
    start.tokens = torch::where(start.known, start.known_tokens, start.tokens);
  }));
  return start;
}

}  // namespace vqd::pipeline
