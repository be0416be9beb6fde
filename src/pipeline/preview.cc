#include "pipeline/preview.h"

#include <algorithm>

#include "base/status_macros.h"
#include "base/torch_util.h"
#include "io/png.h"

namespace vqd::pipeline {

torch::Tensor PreviewTokens(const torch::Tensor& tokens, const torch::Tensor& x0_argmax, int64_t mask_class) {
  return torch::where(tokens.eq(mask_class), x0_argmax.to(tokens.device()), tokens);
}

absl::StatusOr<PreviewImages> RenderPreviews(VqDiffusionPipeline& pipeline, const torch::Tensor& grids) {
  VQD_ASSIGN_OR_RETURN(torch::Tensor images, pipeline.Decode(grids));  // [n, H, W, 3] in [0, 1], CPU
  PreviewImages out;
  VQD_RETURN_IF_ERROR(CatchTorch("shrinking previews", [&] {
    const int64_t h = images.size(1), w = images.size(2);
    const int64_t factor = std::max<int64_t>(1, (std::max(h, w) + kPreviewSide - 1) / kPreviewSide);
    torch::Tensor small = images;
    if (factor > 1 && h % factor == 0 && w % factor == 0) {
      small = torch::avg_pool2d(images.permute({0, 3, 1, 2}), {factor, factor}).permute({0, 2, 3, 1});
    }
    out.height = small.size(1);
    out.width = small.size(2);
    const torch::Tensor pixels = ImagesToUint8(small, torch::kFloat32).contiguous();
    for (int64_t i = 0; i < pixels.size(0); ++i) {
      const torch::Tensor image = pixels[i].contiguous();
      absl::StatusOr<std::string> png = io::EncodePng(image.data_ptr<uint8_t>(), static_cast<int>(out.width),
                                                      static_cast<int>(out.height), 3, /*compression_level=*/1);
      if (!png.ok()) throw std::runtime_error(std::string(png.status().message()));
      out.pngs.push_back(std::move(*png));
    }
  }));
  return out;
}

}  // namespace vqd::pipeline
