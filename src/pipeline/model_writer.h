// Writing model directories in the diffusers layout (the random models, converted checkpoints).
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "absl/status/status.h"
#include "io/tensor_map.h"

namespace vqd::pipeline {

// model_index.json of a VQDiffusionPipeline, as diffusers saves one.
nlohmann::json TextPipelineIndex();

absl::Status WriteJsonFile(const std::string& path, const nlohmann::json& json);

// <dir>/<config_name> and <dir>/<stem>[.fp16].safetensors with `tensors` cast to `dtype` (float
// tensors only; others keep theirs), creating `dir`.
absl::Status WriteComponentFiles(const std::string& dir, const std::string& stem, const io::TensorMap& tensors,
                                 const nlohmann::json& config, const std::string& config_name, torch::Dtype dtype);

}  // namespace vqd::pipeline
