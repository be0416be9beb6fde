#include "pipeline/component_loading.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "io/weights_file.h"

namespace vqd::pipeline {

absl::StatusOr<io::JsonConfig> LoadComponentConfig(const ModelDirectory& dir, absl::string_view component,
                                                   absl::string_view file) {
  return io::JsonConfig::Load(absl::StrCat(dir.ComponentDir(component), "/", file));
}

absl::Status LoadComponentWeights(const ModelDirectory& dir, absl::string_view component, const std::string& variant,
                                  torch::nn::Module& module, nn::LoadOptions load) {
  std::string used_variant;
  VQD_ASSIGN_OR_RETURN(std::string path, dir.WeightsFile(component, variant, &used_variant));
  if (used_variant != variant) {
    spdlog::warn("{}: no {} weights, loading {} instead", std::string(component), variant.empty() ? "full-precision" : "fp16",
                 path);
  }
  VQD_ASSIGN_OR_RETURN(io::TensorMap tensors, io::ReadWeightsFile(path));
  load.component = std::string(component);
  load.file = path;
  return nn::LoadStateDict(module, std::move(tensors), load);  // frees each tensor once copied
}

}  // namespace vqd::pipeline
