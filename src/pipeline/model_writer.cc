#include "pipeline/model_writer.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "io/file_util.h"
#include "io/safetensors.h"

namespace vqd::pipeline {
namespace fs = std::filesystem;

nlohmann::json TextPipelineIndex() {
  return {{"_class_name", "VQDiffusionPipeline"},
          {"_diffusers_version", "0.8.0.dev0"},
          {"learned_classifier_free_sampling_embeddings", {"vq_diffusion", "LearnedClassifierFreeSamplingEmbeddings"}},
          {"scheduler", {"diffusers", "VQDiffusionScheduler"}},
          {"text_encoder", {"transformers", "CLIPTextModel"}},
          {"tokenizer", {"transformers", "CLIPTokenizer"}},
          {"transformer", {"diffusers", "Transformer2DModel"}},
          {"vqvae", {"diffusers", "VQModel"}}};
}

absl::Status WriteJsonFile(const std::string& path, const nlohmann::json& json) {
  return io::WriteFile(path, json.dump(2) + "\n");
}

absl::Status WriteComponentFiles(const std::string& dir, const std::string& stem, const io::TensorMap& tensors,
                                 const nlohmann::json& config, const std::string& config_name, torch::Dtype dtype) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  VQD_RETURN_IF_ERROR(WriteJsonFile((fs::path(dir) / config_name).string(), config));
  io::TensorMap cast;
  VQD_RETURN_IF_ERROR(CatchTorch(absl::StrCat("preparing the weights of ", dir), [&] {
    for (const auto& [name, t] : tensors) {
      cast[name] = (t.is_floating_point() ? t.to(torch::kCPU, dtype) : t.to(torch::kCPU)).contiguous();
    }
  }));
  const std::string file = stem + (dtype == torch::kFloat16 ? ".fp16" : "") + ".safetensors";
  return io::WriteSafetensors((fs::path(dir) / file).string(), cast, {{"format", "pt"}});
}

}  // namespace vqd::pipeline
