// Writes a complete diffusers-layout model directory with random weights, so that the server, the
// tests and the benchmarks run without any download: "tiny" (a few hundred thousand parameters,
// 32x32 images, the project's own small BPE vocabulary), "small" (a mid-size model of 6 M
// parameters with the ITHQ structure, 64x64 images: CPU benchmarks) or "ithq" (the real ITHQ
// shapes, 1.5 B parameters, for GPU benchmarks).
#pragma once

#include <string>

#include <torch/torch.h>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"

namespace vqd::pipeline {

enum class ModelPreset { kTiny, kSmall, kIthq };

absl::StatusOr<ModelPreset> ParseModelPreset(absl::string_view name);

struct MakeModelOptions {
  ModelPreset preset = ModelPreset::kTiny;
  uint64_t seed = 0;
  // Stored precision. Half precision is written as the hub's *.fp16.safetensors variant files.
  torch::Dtype dtype = torch::kFloat32;
};

// Creates `out_dir` (which must not hold a model_index.json yet) and writes the model.
absl::Status MakeRandomModel(const std::string& out_dir, const MakeModelOptions& options);

}  // namespace vqd::pipeline
