// Finding and reading a component's weights the way diffusers does: safetensors preferred over
// .bin, the requested variant ("fp16") preferred over the default file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "io/tensor_map.h"

namespace vqd::io {

// Reads .safetensors with ReadSafetensors and .bin / .pt / .pth with ReadTorchBin.
absl::StatusOr<TensorMap> ReadWeightsFile(const std::string& path);

// File names to look for, best first. For stems {"model", "pytorch_model"} and variant "fp16":
// model.fp16.safetensors, pytorch_model.fp16.safetensors, model.fp16.bin, pytorch_model.fp16.bin,
// model.safetensors, pytorch_model.safetensors, model.bin, pytorch_model.bin. An empty variant
// gives only the last four.
std::vector<std::string> WeightsFileCandidates(const std::vector<std::string>& stems, std::string_view variant);

// The path of the first of `candidates` that is a regular file in `dir`; NotFound listing all of
// them otherwise.
absl::StatusOr<std::string> FindFirstExisting(const std::string& dir, const std::vector<std::string>& candidates);

// FindFirstExisting(component_dir, WeightsFileCandidates(stems, variant)). Typical stems:
// {"diffusion_pytorch_model"} for diffusers models, {"model", "pytorch_model"} for transformers.
absl::StatusOr<std::string> FindWeightsFile(const std::string& component_dir, const std::vector<std::string>& stems,
                                            std::string_view variant = "");

}  // namespace vqd::io
